"""Stockroom: staff dashboard for e-commerce inventory."""
import os
from datetime import timedelta

from flask import Flask
from flask.sessions import SecureCookieSessionInterface

from .config import Config, database_url, from_environment, instance_secret_key
from .database import ping_when_idle, postgres_options, watch_session_settings
from .extensions import csrf, db, login_manager, migrate


class StaffSessions(SecureCookieSessionInterface):
    """The signed cookie session for staff pages; none at all on the storefront API, which
    signs in by bearer token: reading (and verifying) a cookie there is work for nothing,
    and a staff cookie sent to the API must not stand for anyone."""

    def open_session(self, app, request):
        if request.path.startswith("/api/"):
            return self.make_null_session(app)  # reads as empty; writing to it raises
        return super().open_session(app, request)


class Stockroom(Flask):
    session_interface = StaffSessions()

    def ensure_sync(self, func):
        # No view or hook here is async. Flask's default inspects every function it calls
        # (a dozen per request) to find out; the storefront's hot path pays for each.
        return func


def create_app(config: dict | None = None) -> Flask:
    app = Stockroom(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    app.config.from_object(Config)
    app.config.update(from_environment())  # ConfigError names a bad variable
    os.makedirs(app.instance_path, exist_ok=True)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app.instance_path)
    if config:
        app.config.update(config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)
    secure = app.config["COOKIE_SECURE"] and not app.debug and not app.testing
    app.config["SESSION_COOKIE_SECURE"] = secure
    # "Keep me signed in" makes the session cookie persistent for this long (see web.login).
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=app.config["REMEMBER_DAYS"])
    _configure_engine(app)

    db.init_app(app)
    from . import outage

    outage.init_app(app)  # after db, so its teardown runs first (a failed rollback stays in)
    with app.app_context():
        _sqlite_write_locking(db.engine)
        if app.config.get("DATABASE_PING_WHEN_IDLE"):
            ping_when_idle(db.engine)
        watch_session_settings(db.engine, app.config["DATABASE_POOLER"])
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)

    from . import api, cli, health, models, observability, web  # noqa: F401  (models: tables)

    web.init_app(app)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)  # bearer tokens, not cookies: no CSRF exposure
    app.register_blueprint(health.bp)
    cli.init_app(app)  # with the scheduler's commands (and its in-process run under `flask run`)
    observability.init_app(app)  # logging, request ids, /metrics
    _trust_proxies(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind PROXY_HOPS proxies: the client's address, scheme, host and port as forwarded."""
    hops = app.config["PROXY_HOPS"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)


def _sqlite_write_locking(engine) -> None:
    """SQLite: WAL, and BEGIN IMMEDIATE so a transaction never fails upgrading to a writer."""
    if engine.dialect.name != "sqlite":
        return
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _configure_engine(app: Flask) -> None:
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # The try-it-out backend: wait for the write lock instead of failing.
        options.pop("pool_pre_ping", None)
        options.setdefault("connect_args", {"timeout": 30})
    elif app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # pre-ping only connections idle a while (database.ping_when_idle), not every one
        app.config["DATABASE_PING_WHEN_IDLE"] = bool(options.pop("pool_pre_ping", False))
        options = postgres_options(options, pooler=app.config["DATABASE_POOLER"],
                                   prepare=app.config["DATABASE_PREPARE"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
