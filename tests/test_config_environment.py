"""Every environment variable is read in dashboard/config.py, within bounds; a bad value
stops the start with an error naming the variable."""
from __future__ import annotations

import click
import pytest

from dashboard import create_app
from dashboard.config import ConfigError, from_environment, inprocess_scheduler
from dashboard.scheduler import runner

DEFAULTS = {
    "SECRET_KEY": None, "HOLD_TTL_DEFAULT": 900, "HOLD_TTL_MIN": 60, "HOLD_TTL_MAX": 86400,
    "HOLD_EXTEND_CAP": 7200, "STUCK_TTL_MULTIPLE": 4, "EXPIRE_INTERVAL": 30,
    "ALERTS_INTERVAL": 60, "RECONCILE_INTERVAL": 600, "EXPIRE_BATCH": 2000,
    "LOGIN_MAX_FAILURES": 5, "LOGIN_ADDRESS_MAX_FAILURES": 20, "LOGIN_MAX_DELAY_SECONDS": 60,
    "LOGIN_WINDOW_SECONDS": 900, "SESSION_IDLE_MINUTES": 480, "SESSION_MAX_HOURS": 12,
    "REMEMBER_DAYS": 14, "MAX_UPLOAD_MB": 32, "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
    "MAX_FORM_MEMORY_SIZE": 32 * 1024 * 1024, "COOKIE_SECURE": True,
    "DISPLAY_TIMEZONE": "UTC", "LOG_LEVEL": "INFO", "LOG_FORMAT": "text", "PROXY_HOPS": 0,
    "HOLD_ALLOCATION": "priority",
    "DATABASE_POOLER": "direct", "DATABASE_PREPARE": "auto",
    "METRICS_ALLOW": ("127.0.0.0/8", "::1/128"), "METRICS_TOKEN": None,
    "SMTP_HOST": None, "SMTP_PORT": 587, "SMTP_SECURITY": "starttls", "SMTP_USER": None,
    "SMTP_PASSWORD": None, "MAIL_FROM": "stockroom@localhost", "DASHBOARD_URL": None,
    "WEBHOOK_ALLOWED_HOSTS": (), "NOTIFY_INTERVAL": 5, "NOTIFY_BATCH": 50, "NOTIFY_TIMEOUT": 5,
    "NOTIFY_BACKOFF_FIRST": 30, "NOTIFY_BACKOFF_MAX": 3600, "NOTIFY_RETRY_FOR": 86400,
    "DIGEST_HOUR": 7, "NOTIFY_STOCK_UPDATED": False,
}


def test_unset_or_blank_variables_take_the_documented_defaults():
    assert from_environment({}) == DEFAULTS
    assert from_environment({name: " " for name in DEFAULTS}) == DEFAULTS


@pytest.mark.parametrize("given, setting, wanted", [
    ({"EXPIRE_INTERVAL": " 45 "}, "EXPIRE_INTERVAL", 45),
    ({"EXPIRE_BATCH": "1"}, "EXPIRE_BATCH", 1),
    ({"COOKIE_SECURE": "0"}, "COOKIE_SECURE", False),
    ({"COOKIE_SECURE": "off"}, "COOKIE_SECURE", False),
    ({"COOKIE_SECURE": "Yes"}, "COOKIE_SECURE", True),
    ({"LOG_LEVEL": "debug"}, "LOG_LEVEL", "DEBUG"),
    ({"DISPLAY_TIMEZONE": "Europe/Berlin"}, "DISPLAY_TIMEZONE", "Europe/Berlin"),
    ({"SECRET_KEY": "shared-by-every-host"}, "SECRET_KEY", "shared-by-every-host"),
    ({"PROXY_HOPS": "2"}, "PROXY_HOPS", 2),
    ({"DATABASE_POOLER": "Transaction"}, "DATABASE_POOLER", "transaction"),
    ({"LOG_FORMAT": "JSON"}, "LOG_FORMAT", "json"),
    ({"HOLD_ALLOCATION": "most_available"}, "HOLD_ALLOCATION", "most_available"),
    ({"METRICS_ALLOW": "10.1.2.3, 192.168.0.0/16,::1"}, "METRICS_ALLOW",
     ("10.1.2.3/32", "192.168.0.0/16", "::1/128")),
    ({"METRICS_ALLOW": "none"}, "METRICS_ALLOW", ()),
    ({"METRICS_TOKEN": "metrics-token-0123456789"}, "METRICS_TOKEN", "metrics-token-0123456789"),
    ({"SMTP_SECURITY": "TLS"}, "SMTP_PORT", 465),
    ({"SMTP_SECURITY": "none"}, "SMTP_PORT", 25),
    ({"SMTP_SECURITY": "tls", "SMTP_PORT": "2465"}, "SMTP_PORT", 2465),
    ({"SMTP_PASSWORD": " spaced pass "}, "SMTP_PASSWORD", " spaced pass "),
    ({"SMTP_HOST": "mail.example.com", "DASHBOARD_URL": "https://stock.example.com/"},
     "DASHBOARD_URL", "https://stock.example.com"),
    ({"WEBHOOK_ALLOWED_HOSTS": "Hooks.Example.com, *.shop.example,127.0.0.1"},
     "WEBHOOK_ALLOWED_HOSTS", ("hooks.example.com", "*.shop.example", "127.0.0.1")),
])
def test_values_are_parsed(given, setting, wanted):
    assert from_environment(given)[setting] == wanted


@pytest.mark.parametrize("name, value", [
    ("EXPIRE_INTERVAL", "0"),  # reached a division by zero in the scheduler's slots
    ("EXPIRE_INTERVAL", "thirty"),  # was a bare ValueError at import
    ("ALERTS_INTERVAL", "86401"),
    ("RECONCILE_INTERVAL", "-600"),
    ("EXPIRE_BATCH", "1e3"),
    ("HOLD_TTL_MAX", "1.5"),
    ("HOLD_EXTEND_CAP", "²"),
    ("STUCK_TTL_MULTIPLE", "0"),
    ("LOGIN_MAX_FAILURES", "9" * 40),
    ("LOGIN_WINDOW_SECONDS", "15m"),
    ("COOKIE_SECURE", "maybe"),
    ("DISPLAY_TIMEZONE", "Mars/Olympus_Mons"),
    ("DISPLAY_TIMEZONE", "../../etc/passwd"),
    ("LOG_LEVEL", "LOUD"),
    ("PROXY_HOPS", "-1"),
    ("PROXY_HOPS", "6"),
    ("PROXY_HOPS", "all"),
    ("DATABASE_POOLER", "pgbouncer"),
    ("DATABASE_PREPARE", "sometimes"),
    ("LOG_FORMAT", "xml"),
    ("HOLD_ALLOCATION", "nearest"),
    ("METRICS_ALLOW", "10.0.0.0/8,prometheus.internal"),  # names are not resolved
    ("METRICS_TOKEN", "secret"),  # too short to be one
    ("SMTP_SECURITY", "ssl"),
    ("SMTP_PORT", "70000"),
    ("DASHBOARD_URL", "stock.example.com"),  # mails need an absolute address
    ("DASHBOARD_URL", "javascript:alert(1)"),
    ("WEBHOOK_ALLOWED_HOSTS", "hooks.example.com/path"),
    ("NOTIFY_TIMEOUT", "0"),
    ("DIGEST_HOUR", "24"),
])
def test_a_bad_value_is_refused_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=f"^{name} must be"):
        from_environment({name: value})


def test_mail_needs_the_dashboard_address_to_link_to():
    with pytest.raises(ConfigError, match="^DASHBOARD_URL must be set when SMTP_HOST is"):
        from_environment({"SMTP_HOST": "mail.example.com"})


def test_the_default_ttl_must_lie_within_its_bounds():
    with pytest.raises(ConfigError, match="HOLD_TTL_DEFAULT .30. must lie between HOLD_TTL_MIN"):
        from_environment({"HOLD_TTL_DEFAULT": "30"})
    assert from_environment({"HOLD_TTL_DEFAULT": "30", "HOLD_TTL_MIN": "30"})[
        "HOLD_TTL_DEFAULT"] == 30


def test_the_in_process_scheduler_switch_is_checked():
    assert inprocess_scheduler({}) is True
    assert inprocess_scheduler({"STOCKROOM_INPROCESS_SCHEDULER": "false"}) is False
    with pytest.raises(ConfigError, match="^STOCKROOM_INPROCESS_SCHEDULER must be"):
        inprocess_scheduler({"STOCKROOM_INPROCESS_SCHEDULER": "2"})


def test_flask_run_refuses_a_bad_in_process_scheduler_switch(monkeypatch):
    monkeypatch.setenv("STOCKROOM_INPROCESS_SCHEDULER", "nope")
    with click.Context(click.Command("run"), info_name="run"), pytest.raises(
            ConfigError, match="STOCKROOM_INPROCESS_SCHEDULER"):
        runner.in_process_wanted()


def test_an_unusable_database_url_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "not a url")
    with pytest.raises(ConfigError, match="^DATABASE_URL must be"):
        create_app({"TESTING": True, "SECRET_KEY": "test-secret"})


def test_the_app_does_not_start_with_a_bad_variable(monkeypatch, database_url):
    monkeypatch.setenv("EXPIRE_INTERVAL", "0")
    with pytest.raises(ConfigError, match="EXPIRE_INTERVAL must be a whole number from 1 to"):
        create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url,
                    "SECRET_KEY": "test-secret"})
