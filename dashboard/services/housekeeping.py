"""Deleting records nobody needs any more (the alerts job runs this after each evaluation).

How long each kind is kept: finished job runs two weeks, failed sign-ins a day (or the
throttling window, if longer), staff sessions until their absolute lifetime, heartbeats of
schedulers silent for a day, the API's Idempotency-Key answers 24 hours (the promise the
OpenAPI document makes to storefronts), and staff submits a day (a form left open longer is
out of date anyway), and finished notification deliveries with their events 30 days (the
delivery log's reach; a digest reads only the last day's events).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, exists

from ..extensions import db
from ..models import (
    IdempotencyKey, JobRun, LoginAttempt, NotificationDelivery, NotificationEvent,
    SchedulerHeartbeat, StaffSession, Submission,
)
from .transaction import transactional

KEEP_JOB_RUNS = timedelta(days=14)
KEEP_LOGIN_ATTEMPTS = timedelta(days=1)
KEEP_SILENT_HEARTBEATS = timedelta(days=1)
KEEP_IDEMPOTENCY_KEYS = timedelta(hours=24)
KEEP_SUBMISSIONS = timedelta(days=1)
KEEP_NOTIFICATIONS = timedelta(days=30)


@transactional
def _prune_records(now: datetime) -> dict[str, int]:
    window = timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])
    return {
        "job_runs": db.session.execute(
            delete(JobRun).where(JobRun.started_at < now - KEEP_JOB_RUNS,
                                 JobRun.status != "running")
        ).rowcount,
        "login_attempts": db.session.execute(
            delete(LoginAttempt).where(
                LoginAttempt.attempted_at < now - max(KEEP_LOGIN_ATTEMPTS, window))
        ).rowcount,
        "staff_sessions": db.session.execute(
            delete(StaffSession).where(StaffSession.expires_at <= now)
        ).rowcount,
        "heartbeats": db.session.execute(
            delete(SchedulerHeartbeat).where(
                SchedulerHeartbeat.beat_at < now - KEEP_SILENT_HEARTBEATS)
        ).rowcount,
        "submissions": db.session.execute(
            delete(Submission).where(Submission.created_at < now - KEEP_SUBMISSIONS)
        ).rowcount,
        **_prune_notifications(now - KEEP_NOTIFICATIONS),
    }


def _prune_notifications(before: datetime) -> dict[str, int]:
    deliveries = db.session.execute(
        delete(NotificationDelivery).where(NotificationDelivery.created_at < before,
                                           NotificationDelivery.status != "pending")
    ).rowcount
    events = db.session.execute(
        delete(NotificationEvent).where(
            NotificationEvent.created_at < before, NotificationEvent.fanned_out,
            ~exists().where(NotificationDelivery.event_id == NotificationEvent.id))
    ).rowcount
    return {"notification_deliveries": deliveries, "notification_events": events}


@transactional
def prune_idempotency_keys(now: datetime, keep_for: timedelta = KEEP_IDEMPOTENCY_KEYS) -> int:
    """Delete API idempotency keys older than `keep_for`; returns how many."""
    return db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - keep_for)
    ).rowcount


def prune(now: datetime) -> dict[str, int]:
    """Delete what has outlived its use, in two short transactions; how many of each."""
    return {**_prune_records(now), "idempotency_keys": prune_idempotency_keys(now)}
