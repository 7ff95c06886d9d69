"""Configuration: every environment variable Stockroom reads, parsed and checked here.

`from_environment()` reads them all when the app is made (not at import), each within its
bounds; a bad value stops the start with a ConfigError that names the variable and says
what it accepts. `Config` holds the settings that never come from the environment.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DAY = 24 * 60 * 60
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,12}")
# Where a hold that names no location goes: the first sellable location in priority order
# that covers it, or the one with the most available.
HOLD_ALLOCATIONS = ("priority", "most_available")


class ConfigError(Exception):
    """An environment variable with a value Stockroom cannot use."""


class Config:
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = 8 * 60 * 60
    # A request with the same Idempotency-Key (or submit token) as a running one waits this
    # long for it to finish, then answers 409 with Retry-After.
    IDEMPOTENCY_WAIT_MS = 3000
    # Every state-changing staff form must carry its one-time submit token (tests that post
    # bare form data switch it off, as they do CSRF).
    SUBMIT_TOKEN_REQUIRED = True
    # Seconds a client is told to wait before retrying while the database is unavailable.
    RETRY_AFTER_UNAVAILABLE = 2


def from_environment(environ: Mapping[str, str] | None = None) -> dict:
    """The settings read from the environment (os.environ unless given), checked."""
    env = os.environ if environ is None else environ
    settings = {
        # None: a random key is made once per installation and kept in instance/secret_key.
        "SECRET_KEY": env["SECRET_KEY"] if _given(env, "SECRET_KEY") else None,
        # Holds: default and bounds of a hold's time to live, and the extension cap.
        "HOLD_TTL_DEFAULT": _whole(env, "HOLD_TTL_DEFAULT", 15 * 60, 1, 30 * DAY),
        "HOLD_TTL_MIN": _whole(env, "HOLD_TTL_MIN", 60, 1, 30 * DAY),
        "HOLD_TTL_MAX": _whole(env, "HOLD_TTL_MAX", DAY, 1, 30 * DAY),
        # A hold may never be extended to more than this many seconds after it was made.
        "HOLD_EXTEND_CAP": _whole(env, "HOLD_EXTEND_CAP", 2 * 60 * 60, 1, 30 * DAY),
        # A hold older than this multiple of the default TTL counts as stuck.
        "STUCK_TTL_MULTIPLE": _whole(env, "STUCK_TTL_MULTIPLE", 4, 1, 1000),
        "HOLD_ALLOCATION": _choice(env, "HOLD_ALLOCATION", "priority", HOLD_ALLOCATIONS),
        # Scheduler intervals in seconds (SPEC §8), and holds per expiry batch.
        "EXPIRE_INTERVAL": _whole(env, "EXPIRE_INTERVAL", 30, 1, DAY),
        "ALERTS_INTERVAL": _whole(env, "ALERTS_INTERVAL", 60, 1, DAY),
        "RECONCILE_INTERVAL": _whole(env, "RECONCILE_INTERVAL", 600, 1, DAY),
        "EXPIRE_BATCH": _whole(env, "EXPIRE_BATCH", 2000, 1, 1_000_000),
        # Sign-in throttling: failures per (account, address) refuse that address for that
        # account; failures per address slow it down for every account, doubling up to a cap.
        "LOGIN_MAX_FAILURES": _whole(env, "LOGIN_MAX_FAILURES", 5, 1, 1000),
        "LOGIN_ADDRESS_MAX_FAILURES": _whole(env, "LOGIN_ADDRESS_MAX_FAILURES", 20, 1, 100_000),
        "LOGIN_MAX_DELAY_SECONDS": _whole(env, "LOGIN_MAX_DELAY_SECONDS", 60, 1, DAY),
        "LOGIN_WINDOW_SECONDS": _whole(env, "LOGIN_WINDOW_SECONDS", 15 * 60, 1, 30 * DAY),
        # Staff sessions: signed out after this long unused, and this long after sign-in;
        # "keep me signed in" lasts REMEMBER_DAYS on that device instead.
        "SESSION_IDLE_MINUTES": _whole(env, "SESSION_IDLE_MINUTES", 480, 1, 30 * 24 * 60),
        "SESSION_MAX_HOURS": _whole(env, "SESSION_MAX_HOURS", 12, 1, 30 * 24),
        "REMEMBER_DAYS": _whole(env, "REMEMBER_DAYS", 14, 1, 365),
        # Largest request body (the stock count import is the biggest), in megabytes.
        "MAX_UPLOAD_MB": _whole(env, "MAX_UPLOAD_MB", 32, 1, 1024),  # a 100k-row product CSV
        # Cookies only over HTTPS unless COOKIE_SECURE=0 (the local `make run` over plain HTTP).
        "COOKIE_SECURE": _flag(env, "COOKIE_SECURE", True),
        "DISPLAY_TIMEZONE": _time_zone(env, "DISPLAY_TIMEZONE", "UTC"),
        "LOG_LEVEL": _log_level(env, "LOG_LEVEL", "INFO"),
        # "json": one JSON object per log line, with the request id.
        "LOG_FORMAT": _choice(env, "LOG_FORMAT", "text", ("text", "json")),
        # Production shape (deploy/README.md). Proxies in front that set X-Forwarded-For,
        # -Proto, -Host and -Port; 0 believes no such header.
        "PROXY_HOPS": _whole(env, "PROXY_HOPS", 0, 0, 5),
        # "transaction" behind PgBouncer (or any pooler) in transaction mode: no session state.
        "DATABASE_POOLER": _choice(env, "DATABASE_POOLER", "direct", ("direct", "transaction")),
        # Server-side prepared statements: auto = on when direct, off when pooled; "on" for
        # PgBouncer >= 1.21 with max_prepared_statements > 0.
        "DATABASE_PREPARE": _choice(env, "DATABASE_PREPARE", "auto", ("auto", "on", "off")),
        # /metrics answers these addresses, and anyone sending `Authorization: Bearer <token>`.
        "METRICS_ALLOW": _networks(env, "METRICS_ALLOW", "127.0.0.0/8,::1/128"),
        "METRICS_TOKEN": _secret(env, "METRICS_TOKEN", 16),
        **notification_settings(env),
    }
    # The body (a count file) and a form's text (the checked file, posted back to apply it).
    settings["MAX_CONTENT_LENGTH"] = settings["MAX_UPLOAD_MB"] * 1024 * 1024
    settings["MAX_FORM_MEMORY_SIZE"] = settings["MAX_CONTENT_LENGTH"]
    if not settings["HOLD_TTL_MIN"] <= settings["HOLD_TTL_DEFAULT"] <= settings["HOLD_TTL_MAX"]:
        raise ConfigError(
            f"HOLD_TTL_DEFAULT ({settings['HOLD_TTL_DEFAULT']}) must lie between"
            f" HOLD_TTL_MIN ({settings['HOLD_TTL_MIN']}) and HOLD_TTL_MAX"
            f" ({settings['HOLD_TTL_MAX']})"
        )
    return settings


def notification_settings(env: Mapping[str, str]) -> dict:
    """Mail over SMTP (nothing is sent while SMTP_HOST is unset), webhooks, and how the
    scheduler delivers and retries them (issue 16)."""
    security = _choice(env, "SMTP_SECURITY", "starttls", ("starttls", "tls", "none"))
    settings = {
        "SMTP_HOST": _given(env, "SMTP_HOST"),
        "SMTP_PORT": _whole(env, "SMTP_PORT", {"tls": 465, "starttls": 587}.get(security, 25),
                            1, 65535),
        "SMTP_SECURITY": security,
        "SMTP_USER": _given(env, "SMTP_USER"),
        # Kept exactly as given (a password may start or end with a space); blank is none.
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD") if _given(env, "SMTP_PASSWORD") else None,
        "MAIL_FROM": _given(env, "MAIL_FROM") or "stockroom@localhost",
        # Where mails link to: the dashboard as staff reach it, e.g. https://stock.example.com.
        "DASHBOARD_URL": _base_url(env, "DASHBOARD_URL"),
        # Hosts a webhook may be sent to (exact names, or *.example.com); none: no webhooks.
        "WEBHOOK_ALLOWED_HOSTS": _hosts(env, "WEBHOOK_ALLOWED_HOSTS"),
        # The scheduler's delivery: every NOTIFY_INTERVAL seconds, at most NOTIFY_BATCH sends
        # at once, each given NOTIFY_TIMEOUT seconds; failures retried after 30 s, 60 s, ...
        # (at most NOTIFY_BACKOFF_MAX apart) until NOTIFY_RETRY_FOR after the first try.
        "NOTIFY_INTERVAL": _whole(env, "NOTIFY_INTERVAL", 5, 1, DAY),
        "NOTIFY_BATCH": _whole(env, "NOTIFY_BATCH", 50, 1, 1000),
        "NOTIFY_TIMEOUT": _whole(env, "NOTIFY_TIMEOUT", 5, 1, 120),
        "NOTIFY_BACKOFF_FIRST": _whole(env, "NOTIFY_BACKOFF_FIRST", 30, 1, DAY),
        "NOTIFY_BACKOFF_MAX": _whole(env, "NOTIFY_BACKOFF_MAX", 60 * 60, 1, DAY),
        "NOTIFY_RETRY_FOR": _whole(env, "NOTIFY_RETRY_FOR", DAY, 1, 30 * DAY),
        # An event on every change of available (webhooks' `stock_updated`): an INSERT per
        # stock change, so off unless a storefront needs it.
        "NOTIFY_STOCK_UPDATED": _flag(env, "NOTIFY_STOCK_UPDATED", False),
        # The daily digest goes out at this hour of DISPLAY_TIMEZONE.
        "DIGEST_HOUR": _whole(env, "DIGEST_HOUR", 7, 0, 23),
    }
    if settings["SMTP_HOST"] and not settings["DASHBOARD_URL"]:
        raise ConfigError("DASHBOARD_URL must be set when SMTP_HOST is: mails link to the"
                          " dashboard, e.g. DASHBOARD_URL=https://stock.example.com")
    return settings


def inprocess_scheduler(environ: Mapping[str, str] | None = None) -> bool:
    """STOCKROOM_INPROCESS_SCHEDULER: whether `flask run` runs the jobs in its process."""
    return _flag(os.environ if environ is None else environ, "STOCKROOM_INPROCESS_SCHEDULER",
                 True)


def database_url(instance_path: str, environ: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL, normalised to psycopg 3; a SQLite file under instance/ when unset."""
    env = os.environ if environ is None else environ
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "stockroom.sqlite3")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
            break
    try:
        make_url(url)
    except ArgumentError:
        raise ConfigError(
            "DATABASE_URL must be a database URL such as postgresql://user@host/db"
        ) from None
    return url


def instance_secret_key(instance_path: str) -> str:
    """This installation's own random key, made on first start (never a well-known default).

    Every process on the host reads the same file; hosts behind one load balancer must
    share SECRET_KEY through the environment instead.
    """
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        # Write aside, then link into place: a second process starting at the same moment
        # either wins the link or reads the complete key, never a half-written file.
        draft = path.with_name(f"secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def _given(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value, or None when it is unset or blank (the default applies)."""
    value = env.get(name, "").strip()
    return value or None


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _given(env, name)
    if value is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(value) or not low <= int(value) <= high:
        raise ConfigError(f"{name} must be a whole number from {low:,} to {high:,};"
                          f" it is {value[:40]!r}")
    return int(value)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = _given(env, name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1 or 0 (or true/false, yes/no, on/off);"
                      f" it is {value[:40]!r}")


def _time_zone(env: Mapping[str, str], name: str, default: str) -> str:
    value = _given(env, name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigError(f"{name} must be a time zone name such as UTC or Europe/Berlin;"
                          f" it is {value[:40]!r}") from None
    return value


def _log_level(env: Mapping[str, str], name: str, default: str) -> str:
    value = (_given(env, name) or default).upper()
    if value not in LOG_LEVELS:
        raise ConfigError(f"{name} must be one of {', '.join(LOG_LEVELS)}; it is {value[:40]!r}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (_given(env, name) or default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; it is {value[:40]!r}")
    return value


def _networks(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR ranges; "none" allows none."""
    value = _given(env, name) or default
    if value.lower() == "none":
        return ()
    found = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            found.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ConfigError(f"{name} must be addresses or CIDR ranges such as 10.0.0.0/8;"
                              f" it has {part[:60]!r}") from None
    return tuple(found)


def _base_url(env: Mapping[str, str], name: str) -> str | None:
    value = _given(env, name)
    if value is None:
        return None
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise ConfigError(f"{name} must be an http(s) address such as https://stock.example.com;"
                          f" it is {value[:60]!r}")
    return value.rstrip("/")


def _hosts(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated host names or addresses; `*.example.com` allows its subdomains."""
    found = []
    for part in filter(None, (p.strip().lower() for p in (env.get(name) or "").split(","))):
        if not re.fullmatch(r"(\*\.)?[a-z0-9._:\[\]-]{1,253}", part):
            raise ConfigError(f"{name} must be host names such as hooks.example.com or"
                              f" *.example.com; it has {part[:60]!r}")
        found.append(part)
    return tuple(found)


def _secret(env: Mapping[str, str], name: str, min_length: int) -> str | None:
    """An optional secret; when set, long enough not to be guessed."""
    value = _given(env, name)
    if value is not None and len(value) < min_length:
        raise ConfigError(f"{name} must be at least {min_length} characters when set")
    return value
