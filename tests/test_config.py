"""Configuration from the environment: database URL and the installation's secret key."""
import os
import stat
import threading

from dashboard.config import database_url, instance_secret_key


def test_database_url_defaults_to_sqlite_under_instance(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert database_url(str(tmp_path)) == f"sqlite:///{tmp_path}/stockroom.sqlite3"


def test_postgres_urls_use_psycopg_3(monkeypatch, tmp_path):
    for given in ("postgres://u@h/db", "postgresql://u@h/db"):
        monkeypatch.setenv("DATABASE_URL", given)
        assert database_url(str(tmp_path)) == "postgresql+psycopg://u@h/db"


def test_secret_key_is_random_per_installation_private_and_stable(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    key = instance_secret_key(str(first))
    assert len(key) >= 40 and instance_secret_key(str(first)) == key
    assert instance_secret_key(str(second)) != key
    assert stat.S_IMODE(os.stat(first / "secret_key").st_mode) == 0o600
    assert os.listdir(first) == ["secret_key"]


def test_processes_starting_together_agree_on_one_key(tmp_path):
    keys, start = [], threading.Barrier(8)

    def read():
        start.wait()
        keys.append(instance_secret_key(str(tmp_path)))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and os.listdir(tmp_path) == ["secret_key"]
