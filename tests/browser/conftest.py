"""Fixtures of the browser journeys: the CSRF-enforcing app served live, and Chromium."""
from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server


@pytest.fixture
def live_server(app, csrf_app):
    """Serve `csrf_app` on 127.0.0.1 in a thread; yields 'http://127.0.0.1:<port>'.

    A thread of this process, so it sees what the test wrote (`app` migrated the database).
    """
    server = make_server("127.0.0.1", 0, csrf_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def chromium():
    """Headless Chromium from /usr/bin/chromium, closed (with Playwright) after the test."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    try:
        yield browser
    finally:
        browser.close()
        playwright.stop()
