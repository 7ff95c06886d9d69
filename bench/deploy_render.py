"""deploy/'s files made to run on this machine: loopback ports, a scratch directory.

Only the addresses, paths and credentials a shop would fill in are replaced; each
replacement must find its line, so a change to deploy/ that this no longer matches fails
loudly instead of testing something else. Used by bench/three_hosts.py and
tests/deploy/test_files.py.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def _replace(text: str, pattern: str, replacement: str, count: int = 1) -> str:
    new, found = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if found != count:
        raise ValueError(f"expected {count} match(es) of {pattern!r} in a deploy/ file, found {found}")
    return new


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def nginx_config(directory: Path, upstreams: list[str], https_port: int, http_port: int) -> Path:
    """deploy/nginx/stockroom.conf inside a minimal nginx.conf; returns the nginx.conf."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(directory)
    site = (DEPLOY / "nginx" / "stockroom.conf").read_text()
    servers = "".join(f"    server {u} max_fails=3 fail_timeout=10s;\n" for u in upstreams)
    site = _replace(site, r"^    server 10\.0\.0\.\d+:8000 .*\n", "", count=3)
    site = _replace(site, r"^(upstream stockroom_web \{\n.*\n)", r"\g<1>" + servers)
    site = _replace(site, r"^    listen \[::\]:\d+.*\n", "", count=2)
    site = _replace(site, r"^    listen 80;", f"    listen 127.0.0.1:{http_port};")
    site = _replace(site, r"^    listen 443 ssl http2;", f"    listen 127.0.0.1:{https_port} ssl http2;")
    site = _replace(site, r"^    ssl_certificate .*;", f"    ssl_certificate {cert};")
    site = _replace(site, r"^    ssl_certificate_key .*;", f"    ssl_certificate_key {key};")
    site = _replace(site, r"/var/log/nginx/stockroom\.access\.log", str(directory / "access.log"))
    (directory / "stockroom.conf").write_text(site)
    temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
        path.chmod(0o777)  # nginx's workers run as nobody when started by root
    main = directory / "nginx.conf"
    main.write_text(f"""\
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    access_log off;
    include {directory / "stockroom.conf"};
}}
""")
    directory.chmod(0o755)
    return main


def nginx_command(config: Path) -> list[str]:
    return [NGINX, "-p", str(config.parent), "-c", str(config), "-g", "daemon off;"]


def pgbouncer_config(directory: Path, port: int, database: str) -> Path:
    """deploy/pgbouncer/pgbouncer.ini on 127.0.0.1:`port` with trust auth, for `database`."""
    directory.mkdir(parents=True, exist_ok=True)
    ini = (DEPLOY / "pgbouncer" / "pgbouncer.ini").read_text()
    ini = _replace(ini, r"^stockroom = host=127\.0\.0\.1 port=5432 dbname=stockroom$",
                   f"stockroom = host=127.0.0.1 port=5432 dbname={database}")
    ini = _replace(ini, r"^listen_addr = .*$", "listen_addr = 127.0.0.1")
    ini = _replace(ini, r"^listen_port = .*$", f"listen_port = {port}")
    ini = _replace(ini, r"^unix_socket_dir = .*$", "unix_socket_dir =")
    ini = _replace(ini, r"^auth_type = .*$", "auth_type = trust")
    ini = _replace(ini, r"^auth_file = .*$", f"auth_file = {directory / 'userlist.txt'}")
    ini = _replace(ini, r"^admin_users = .*$", "admin_users = postgres")
    ini = _replace(ini, r"^stats_users = .*$", "stats_users = postgres")
    ini = _replace(ini, r"^logfile = .*\n", "")
    ini = _replace(ini, r"^pidfile = .*\n", "")
    (directory / "userlist.txt").write_text('"postgres" ""\n')
    path = directory / "pgbouncer.ini"
    path.write_text(ini)
    directory.chmod(0o755)
    return path


def environment(overrides: dict[str, str]) -> dict[str, str]:
    """deploy/stockroom.env.example as a process environment, with `overrides` for this machine."""
    values = {}
    for line in (DEPLOY / "stockroom.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return {**os.environ, **values, **overrides}
