"""Dashboard page tests through the Flask test client, signed in as each role."""
