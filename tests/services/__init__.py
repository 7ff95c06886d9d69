"""Service-layer tests: dashboard.services called directly, against the real database."""
