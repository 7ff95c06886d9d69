"""Configuration read from the environment, in one place."""
import os
import secrets
from datetime import timedelta
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def database_url(instance_path: str) -> str:
    """DATABASE_URL, normalised to psycopg 3; a SQLite file under instance/ when unset."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return "sqlite:///" + str(Path(instance_path) / "stockroom.sqlite3")
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
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


class Config:
    # None: a random key is made once per installation and kept in instance/secret_key.
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

    # Holds: default and bounds of a hold's time to live, and the extension cap.
    HOLD_TTL_DEFAULT = _int("HOLD_TTL_DEFAULT", 15 * 60)
    HOLD_TTL_MIN = _int("HOLD_TTL_MIN", 60)
    HOLD_TTL_MAX = _int("HOLD_TTL_MAX", 24 * 60 * 60)
    # A hold may never be extended to more than this many seconds after it was made.
    HOLD_EXTEND_CAP = _int("HOLD_EXTEND_CAP", 2 * 60 * 60)
    # A hold older than this multiple of the default TTL counts as stuck.
    STUCK_TTL_MULTIPLE = _int("STUCK_TTL_MULTIPLE", 4)

    # Scheduler intervals in seconds (SPEC §8).
    EXPIRE_INTERVAL = _int("EXPIRE_INTERVAL", 30)
    ALERTS_INTERVAL = _int("ALERTS_INTERVAL", 60)
    RECONCILE_INTERVAL = _int("RECONCILE_INTERVAL", 600)
    EXPIRE_BATCH = _int("EXPIRE_BATCH", 2000)

    # Sign-in throttling.
    LOGIN_MAX_FAILURES = _int("LOGIN_MAX_FAILURES", 5)
    LOGIN_WINDOW_SECONDS = _int("LOGIN_WINDOW_SECONDS", 15 * 60)

    # Cookies only over HTTPS unless COOKIE_SECURE=0 (the local `make run` over plain HTTP).
    COOKIE_SECURE = os.environ.get("COOKIE_SECURE", "1") != "0"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    # "Keep me signed in" lasts two weeks, not Flask-Login's default year.
    REMEMBER_COOKIE_DURATION = timedelta(days=14)
    WTF_CSRF_TIME_LIMIT = 8 * 60 * 60
    DISPLAY_TIMEZONE = os.environ.get("DISPLAY_TIMEZONE", "UTC")
