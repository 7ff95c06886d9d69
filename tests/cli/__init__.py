"""Command-line tests: the flask commands through the Click test runner."""
