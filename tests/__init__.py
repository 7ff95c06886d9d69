"""Stockroom's test suite: shared fixtures in conftest.py, one package per layer."""
