"""The fault test (issue 9): load through gunicorn while its own PostgreSQL is restarted."""
