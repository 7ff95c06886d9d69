"""Low-stock and out-of-stock alerts (SPEC §4): raised, escalated, de-escalated, resolved.

The level of a product is a function of `available` and its threshold. `level_sql` and
`level_of` are the same rule in SQL (set-based evaluation) and in Python (the single
product just changed by a service); keep them side by side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Product, StockAlert
from .actor import Actor
from .errors import AlertWrongState, NotFound
from .events import alerts_changed
from .ledger import among
from .limits import reason_text, require_whole_number
from .transaction import transactional

UNRESOLVED = ("open", "acknowledged")


def level_of(available: int, threshold: int, is_active: bool) -> str | None:
    if not is_active:
        return None
    if available <= 0:
        return "OUT_OF_STOCK"
    if available <= threshold:
        return "LOW_STOCK"
    return None


def level_sql():
    available = Product.on_hand - Product.reserved
    return case(
        (~Product.is_active, None),
        (available <= 0, "OUT_OF_STOCK"),
        (available <= Product.low_stock_threshold, "LOW_STOCK"),
        else_=None,
    )


def recovery_note(available: int, threshold: int) -> str:
    return f"Recovered automatically: {available} available, above the threshold of {threshold}."


@dataclass
class AlertChanges:
    opened: int = 0
    escalated: int = 0
    deescalated: int = 0
    resolved: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def __iadd__(self, other: AlertChanges) -> AlertChanges:
        for key, value in other.__dict__.items():
            setattr(self, key, getattr(self, key) + value)
        return self


def evaluate_product(
    product_id: int, on_hand: int, reserved: int, threshold: int, is_active: bool,
    muted: bool, now: datetime,
) -> AlertChanges:
    """Evaluate one product just changed inside the caller's transaction (a few index reads)."""
    changes = AlertChanges()
    available = on_hand - reserved
    level = level_of(available, threshold, is_active)
    alert = db.session.scalars(
        select(StockAlert).where(
            StockAlert.product_id == product_id, StockAlert.status.in_(UNRESOLVED)
        )
    ).first()
    if level is None:
        if alert is not None:
            alert.status, alert.resolved_at = "resolved", now
            alert.resolved_by_id = None
            alert.resolution_note = (
                recovery_note(available, threshold) if is_active
                else "Resolved automatically: the product was deactivated."
            )
            changes.resolved += 1
            db.session.flush()
            alerts_changed("alert_resolved", [alert.id], now)
        if muted:
            db.session.execute(
                update(Product).where(Product.id == product_id).values(alert_muted=False)
            )
        return changes
    if alert is not None:
        if alert.kind != level:
            if level == "OUT_OF_STOCK":
                changes.escalated += 1
                alert.status = "open"  # a worse state needs fresh attention
            else:
                changes.deescalated += 1
            alert.kind, alert.kind_changed_at = level, now
            if changes.escalated:
                db.session.flush()
                alerts_changed("alert_escalated", [alert.id], now)
        return changes
    if not muted:
        opened = _insert_alerts(
            select(
                db.literal(product_id), db.literal(level), db.literal("open"),
                db.literal(now, type_=StockAlert.opened_at.type), db.literal(available),
            )
        )
        alerts_changed("alert_opened", opened, now)
        changes.opened += len(opened)
    return changes


@dataclass
class _Plan:
    """Products whose alert state is wrong, sorted by the change each needs."""

    resolve: list[int] = field(default_factory=list)  # recovered, or deactivated
    unmute: list[int] = field(default_factory=list)  # back above the threshold: may alert again
    escalate: list[int] = field(default_factory=list)  # LOW -> OUT
    deescalate: list[int] = field(default_factory=list)  # OUT -> LOW
    raise_: list[int] = field(default_factory=list)  # entered a state with no alert


def evaluate_all(product_ids: list[int] | None, now: datetime) -> AlertChanges:
    """Set-based evaluation of many products (or all) inside the caller's transaction.

    One pass finds the products whose alert state is wrong, locks just those (in id order:
    products before alerts, as every service does) and sorts them into what each needs;
    then one statement per kind of change runs, only when it has products to change.
    Every service already evaluates the products it changes, so the set is usually small.
    """
    plan = _classify(product_ids)
    return _apply(plan, now) if plan is not None else AlertChanges()


def _classify(product_ids: list[int] | None) -> _Plan | None:
    """The one pass over products and their unresolved alerts; None when all are right."""
    level = level_sql()
    current = aliased(StockAlert)
    wrong = (
        (level.is_(None) & (current.kind.is_not(None) | Product.alert_muted))
        | (level.is_not(None) & current.kind.is_not(None) & (current.kind != level))
        | (level.is_not(None) & current.kind.is_(None) & ~Product.alert_muted)
    )
    candidates = (
        select(Product.id, level, current.kind, Product.alert_muted)
        .outerjoin(current, (current.product_id == Product.id)
                   & current.status.in_(UNRESOLVED))
        .where(wrong)
        .order_by(Product.id)
        .with_for_update(of=Product)
    )
    if product_ids is not None:
        candidates = candidates.where(among(Product.id, list(product_ids)))
    found = db.session.execute(candidates).all()
    if not found:
        return None
    plan = _Plan()
    for pid, want, kind, muted in found:
        if want is None:
            if kind is not None:
                plan.resolve.append(pid)
            if muted:
                plan.unmute.append(pid)
        elif kind is None:
            if not muted:
                plan.raise_.append(pid)
        elif want == "OUT_OF_STOCK" and kind == "LOW_STOCK":
            plan.escalate.append(pid)
        elif want == "LOW_STOCK" and kind == "OUT_OF_STOCK":
            plan.deescalate.append(pid)
    return plan


def _apply(plan: _Plan, now: datetime) -> AlertChanges:
    """One statement per kind of change the plan has products for. Each statement checks
    the level again, so it changes only what is still wrong under the locks."""
    changes = AlertChanges()
    level = level_sql()
    available = Product.on_hand - Product.reserved
    alert_level = select(level).where(Product.id == StockAlert.product_id).scalar_subquery()
    unresolved = StockAlert.status.in_(UNRESOLVED)
    no_sync = {"synchronize_session": False}

    if plan.resolve:
        note = (
            select(
                case(
                    (~Product.is_active, "Resolved automatically: the product was deactivated."),
                    else_="Recovered automatically: "
                    + func.cast(available, db.String)
                    + " available, above the threshold of "
                    + func.cast(Product.low_stock_threshold, db.String)
                    + ".",
                )
            )
            .where(Product.id == StockAlert.product_id)
            .scalar_subquery()
        )
        resolved = db.session.scalars(
            update(StockAlert)
            .where(unresolved, among(StockAlert.product_id, plan.resolve),
                   alert_level.is_(None))
            .values(status="resolved", resolved_at=now, resolved_by_id=None,
                    resolution_note=note)
            .returning(StockAlert.id)
            .execution_options(**no_sync)
        ).all()
        changes.resolved = len(resolved)
        alerts_changed("alert_resolved", resolved, now)
    if plan.unmute:
        db.session.execute(
            update(Product)
            .where(among(Product.id, plan.unmute), Product.alert_muted, level.is_(None))
            .values(alert_muted=False)
            .execution_options(**no_sync)
        )
    if plan.escalate:  # re-opened: a worse state needs fresh attention
        escalated = db.session.scalars(
            update(StockAlert)
            .where(unresolved, among(StockAlert.product_id, plan.escalate),
                   StockAlert.kind == "LOW_STOCK", alert_level == "OUT_OF_STOCK")
            .values(kind="OUT_OF_STOCK", kind_changed_at=now, status="open")
            .returning(StockAlert.id)
            .execution_options(**no_sync)
        ).all()
        changes.escalated = len(escalated)
        alerts_changed("alert_escalated", escalated, now)
    if plan.deescalate:
        changes.deescalated = db.session.execute(
            update(StockAlert)
            .where(unresolved, among(StockAlert.product_id, plan.deescalate),
                   StockAlert.kind == "OUT_OF_STOCK", alert_level == "LOW_STOCK")
            .values(kind="LOW_STOCK", kind_changed_at=now)
            .execution_options(**no_sync)
        ).rowcount
    if plan.raise_:
        opened = _insert_alerts(
            select(
                Product.id, level, db.literal("open"),
                db.literal(now, type_=StockAlert.opened_at.type), available,
            ).where(among(Product.id, plan.raise_), level.is_not(None), ~Product.alert_muted)
        )
        changes.opened = len(opened)
        alerts_changed("alert_opened", opened, now)
    return changes


def _insert_alerts(rows_select) -> list[int]:
    """INSERT ... SELECT that skips products which got an unresolved alert meanwhile (I4)."""
    dialect = db.session.get_bind().dialect.name
    insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert_fn(StockAlert).from_select(
        ["product_id", "kind", "status", "opened_at", "opened_available"], rows_select
    )
    # A literal predicate: with a bound parameter, PostgreSQL cannot match the partial index
    # once the statement is prepared and planned generically (after ~10 runs on a connection).
    statement = statement.on_conflict_do_nothing(
        index_elements=["product_id"], index_where=text("status <> 'resolved'")
    ).returning(StockAlert.id)
    # The new alerts' ids (psycopg reports no rowcount for INSERT ... SELECT ... ON CONFLICT).
    return list(db.session.scalars(statement))


@transactional
def evaluate_alerts(product_ids: list[int] | None = None, *, now: datetime) -> AlertChanges:
    """Evaluate alerts for the given products, or every product, as one transaction."""
    return evaluate_all(product_ids, now)


def _unresolved_alert(alert_id: int) -> StockAlert:
    """The alert, locked after its product (lock order: products, then alerts)."""
    alert_id = require_whole_number(alert_id, "alert_id", 1, 2**31 - 1)
    product_id = db.session.scalar(select(StockAlert.product_id).where(StockAlert.id == alert_id))
    if product_id is not None:
        db.session.execute(select(Product.id).where(Product.id == product_id).with_for_update())
    alert = db.session.scalars(
        select(StockAlert).where(StockAlert.id == alert_id).with_for_update()
    ).first()
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist")
    if alert.status == "resolved":
        who = alert.resolved_by.name if alert.resolved_by else "the system"
        raise AlertWrongState(
            f"alert already resolved by {who} at {alert.resolved_at:%Y-%m-%d %H:%M} UTC"
        )
    return alert


@transactional
def acknowledge(alert_id: int, *, actor: Actor, now: datetime) -> StockAlert:
    """Mark an alert as someone-is-on-it. Acknowledging twice changes nothing."""
    alert = _unresolved_alert(alert_id)
    if alert.status == "open":
        alert.status, alert.acknowledged_at = "acknowledged", now
        alert.acknowledged_by_id = actor.staff_id
    return alert


@transactional
def resolve(alert_id: int, *, actor: Actor, note: str, now: datetime) -> StockAlert:
    """Resolve by hand with a note; the product is not alerted again until it recovers."""
    note = reason_text(note, "note")
    alert = _unresolved_alert(alert_id)
    alert.status, alert.resolved_at = "resolved", now
    alert.resolved_by_id = actor.staff_id
    alert.resolution_note = note
    db.session.flush()
    alerts_changed("alert_resolved", [alert.id], now, staff_id=actor.staff_id)
    product = db.session.get(Product, alert.product_id)
    if level_of(product.available, product.low_stock_threshold, product.is_active) is not None:
        product.alert_muted = True
    return alert
