"""Scheduler tests: job runs and slots, real scheduler processes, /healthz."""
