"""Staff journeys in real Chromium (Playwright) against a live server."""
