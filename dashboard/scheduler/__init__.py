"""Scheduled jobs: hold expiry, alert evaluation, reconciliation (SPEC §8)."""
