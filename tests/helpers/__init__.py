"""Plain helpers more than one layer uses (fixtures live in the conftest.py files)."""
