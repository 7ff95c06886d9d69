"""deploy/ holds files a shop installs; each is checked by the program that will read it.

nginx and systemd-analyze validate the site and the units (with this machine's paths),
PgBouncer serves the app with deploy/pgbouncer/pgbouncer.ini, and the example
environment names only settings something reads.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench import deploy_render
from dashboard import create_app
from dashboard.extensions import db
from tests.helpers.app import ROOT, app_config
from tests.helpers.pgbouncer import available, command, wait_until_listening
from tests.helpers.servers import free_port

DEPLOY = ROOT / "deploy"


def test_the_nginx_site_is_valid_nginx(tmp_path):
    if not shutil.which("nginx") and not Path(deploy_render.NGINX).exists():
        pytest.skip("needs nginx (apt-get install nginx)")
    config = deploy_render.nginx_config(tmp_path, ["127.0.0.1:18001", "127.0.0.1:18002"],
                                        free_port(), free_port())
    checked = subprocess.run([deploy_render.NGINX, "-t", "-p", str(tmp_path), "-c", str(config)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


def test_the_nginx_site_forwards_what_proxy_hops_believes():
    site = (DEPLOY / "nginx" / "stockroom.conf").read_text()
    for header in ("X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto $scheme",
                   "X-Forwarded-Host $host", "X-Forwarded-Port $server_port",
                   "X-Request-Id $request_id"):
        assert f"proxy_set_header {header};" in site
    assert "Strict-Transport-Security" in site and "location = /metrics" in site


def test_the_systemd_units_are_valid(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("needs systemd-analyze (systemd)")
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text().replace("/srv/stockroom", str(ROOT))
        text = text.replace("/etc/stockroom/stockroom.env", str(DEPLOY / "stockroom.env.example"))
        (tmp_path / unit.name).write_text(text)
        units.append(str(tmp_path / unit.name))
        assert "KillSignal=SIGTERM" in text and "Restart=always" in text
    checked = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True,
                             text=True)
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr


def test_every_example_setting_is_read_by_something():
    readers = "".join(p.read_text() for p in (
        ROOT / "dashboard" / "config.py", ROOT / "dashboard" / "observability" / "__init__.py",
        ROOT / "gunicorn.conf.py", DEPLOY / "systemd" / "stockroom-web.service"))
    example = (DEPLOY / "stockroom.env.example").read_text()
    names = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE)
    unread = [n for n in names if f'"{n}"' not in readers and f"${{{n}}}" not in readers]
    assert len(names) >= 10 and unread == []


def test_the_pgbouncer_config_serves_the_app(requires_postgres, database_url, tmp_path):
    if not available():
        pytest.skip("needs /usr/sbin/pgbouncer (apt-get install pgbouncer)")
    port = free_port()
    database = sa.engine.make_url(database_url).database
    ini = deploy_render.pgbouncer_config(tmp_path, port, database)
    assert "pool_mode = transaction" in ini.read_text()
    with open(tmp_path / "log", "wb") as log:
        bouncer = subprocess.Popen(command(ini), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(port, bouncer)
        # `stockroom` is PgBouncer's name for the database, as in the example DATABASE_URL.
        app = create_app(app_config(f"postgresql+psycopg://postgres@127.0.0.1:{port}/stockroom",
                                    DATABASE_POOLER="transaction"))
        with app.app_context():
            seen = db.session.scalar(sa.text("SELECT current_database()"))
            answer = app.test_client().get("/healthz/web")
            db.session.remove()
            db.engine.dispose()
    finally:
        bouncer.terminate()
        bouncer.wait(timeout=10)
    assert seen == database and answer.status_code == 200
