"""Job runs claimed once per slot. Placeholder contract: the scheduler helper fills this in.

JOBS: dict of job name ("expire", "alerts", "reconcile") -> callable(now) -> dict detail.
run_job(name, *, now, triggered_by=None) -> JobRun   # one run now, recorded in job_runs
next_run_at(name, now) -> datetime | None            # when the scheduler will next run it
"""
