"""Take the README's screenshots in real Chromium against a fresh demo shop.

    .venv/bin/python docs/screenshots/take.py

Loads the demo into a throwaway SQLite database, serves it on a free loopback port (the
scheduler off, so the pictures hold still), signs in as the demo merchandiser and support
member, and writes PNGs next to this file: the stock list at 1440 and 820 px wide, a product
page with its chart, and the holds list. The server is stopped at the end, whatever happens.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
PASSWORD = "stockroom-demo"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, server: subprocess.Popen) -> None:
    for _ in range(100):
        if server.poll() is not None:
            raise SystemExit(f"the demo server stopped (exit {server.returncode})")
        try:
            urllib.request.urlopen(url + "/sign-in", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the demo server did not start within 20 s")


def _sign_in(browser, base: str, email: str, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(base + "/sign-in")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    return page


def _shoot(page, name: str, full_page: bool = False) -> None:
    page.wait_for_load_state("networkidle")
    path = HERE / name
    page.screenshot(path=str(path), full_page=full_page)
    print(f"  wrote {path.relative_to(ROOT)}")


def take(base: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
            args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            for width, height in ((1440, 900), (820, 1180)):
                page = _sign_in(browser, base, "merch@stockroom.example", width, height)
                page.goto(base + "/stock")
                _shoot(page, f"stock-list-{width}.png")
                if width == 820:
                    # A row's Adjust or count opens in a panel on a tablet.
                    page.get_by_role("link", name="Adjust or count").first.click()
                    page.locator("#stock-panel").get_by_label("Change (units)").wait_for()
                    _shoot(page, "stock-panel-820.png")
                if width == 1440:
                    # The product with the most history makes the chart worth a look.
                    page.goto(base + "/stock?filter=low")
                    page.locator("#stock-table tbody tr a").first.click()
                    page.wait_for_url("**/products/**")
                    page.locator("nav.range-chooser a", has_text="30 d").click()
                    page.wait_for_url("**range=30d**")
                    _shoot(page, "product-page.png", full_page=True)
                page.close()
            page = _sign_in(browser, base, "support@stockroom.example", 1440, 900)
            page.goto(base + "/holds")
            _shoot(page, "holds-list.png")
        finally:
            browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="stockroom-shots-") as scratch:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{scratch}/demo.sqlite3",
               "SECRET_KEY": "screenshots-only-" + "x" * 32, "COOKIE_SECURE": "0",
               "STOCKROOM_INPROCESS_SCHEDULER": "0", "LOG_LEVEL": "WARNING"}
        print("Loading the demo shop…")
        subprocess.run(FLASK + ["db", "upgrade"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(FLASK + ["demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(FLASK + ["run", "--host", "127.0.0.1", "--port", str(port)],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            _wait_until_serving(base, server)
            print(f"Taking screenshots against {base}…")
            take(base)
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
