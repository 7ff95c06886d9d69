"""Deploy tests: behind a proxy, through PgBouncer, under gunicorn.conf.py, /metrics, deploy/ files."""
