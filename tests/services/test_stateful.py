"""A hypothesis state machine drives every stock service with a fake clock and checks, after
each step, I1-I6 (`services.check() == []`) and a plain-Python model of what the counters,
holds, alerts and ledger must be."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from hypothesis.stateful import run_state_machine_as_test
from sqlalchemy import func, select

from dashboard import services
from dashboard.extensions import db
from dashboard.models import Product, Reservation, StaffUser, StockAlert, StockMovement
from dashboard.services import SYSTEM, Actor, Owner
from dashboard.services.errors import (
    BelowHeld,
    ExtendBeyondCap,
    ImportRejected,
    InactiveProduct,
    InsufficientStock,
    InvalidInput,
    ReservationNotActive,
    StaleCount,
)
from tests.helpers.app import NOW, empty_tables

PRODUCTS = 3
TTLS = [60, 120, 600]


@dataclass
class ModelProduct:
    sku: str
    on_hand: int
    threshold: int
    active: bool = True
    muted: bool = False
    alert: list | None = None  # [kind, status] of the unresolved alert, if any
    id: int = 0


@dataclass
class ModelHold:
    product: int  # index into products
    quantity: int
    created_at: object
    expires_at: object
    status: str = "active"


@dataclass
class Model:
    products: list[ModelProduct] = field(default_factory=list)
    holds: dict[int, ModelHold] = field(default_factory=dict)
    ledger_rows: int = 0

    def reserved(self, index: int) -> int:
        return sum(h.quantity for h in self.holds.values()
                   if h.product == index and h.status == "active")

    def available(self, index: int) -> int:
        return self.products[index].on_hand - self.reserved(index)

    def expire(self, now, index: int | None = None) -> int:
        due = [h for h in self.holds.values() if h.status == "active" and h.expires_at <= now
               and (index is None or h.product == index)]
        for h in due:
            h.status = "expired"
        self.ledger_rows += len(due)
        return len(due)

    def evaluate(self) -> None:
        """SPEC §4, the way every service leaves the products it touched."""
        for i, p in enumerate(self.products):
            available = self.available(i)
            level = None
            if p.active and available <= 0:
                level = "OUT_OF_STOCK"
            elif p.active and available <= p.threshold:
                level = "LOW_STOCK"
            if level is None:
                p.alert, p.muted = None, False
            elif p.alert is not None:
                if p.alert[0] != level:
                    p.alert = [level, "open" if level == "OUT_OF_STOCK" else p.alert[1]]
            elif not p.muted:
                p.alert = [level, "open"]


class StockMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        empty_tables()
        self.now = NOW
        self.model = Model()
        staff = StaffUser(email="boss@example.com", name="Boss", password_hash="x",
                          role="manager", created_at=NOW)
        db.session.add(staff)
        db.session.commit()
        self.manager = Actor.staff(staff)

    @initialize(stock=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 4)),
                               min_size=PRODUCTS, max_size=PRODUCTS))
    def create_products(self, stock):
        for i, (on_hand, threshold) in enumerate(stock):
            product = services.create_product(f"P{i}", f"Product {i}", actor=SYSTEM,
                                              now=self.now, on_hand=on_hand,
                                              low_stock_threshold=threshold)
            self.model.products.append(ModelProduct(f"P{i}", on_hand, threshold, id=product.id))
            self.model.ledger_rows += 1 if on_hand else 0
        self.model.evaluate()

    # --- the clock -------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([10, 61, 300, 3600]), job=st.sampled_from(
        [None, "expire", "alerts"]))
    def advance_clock(self, seconds, job):
        """Time passes; the scheduler may run a job (few rules, so each gets picked often)."""
        self.now += timedelta(seconds=seconds)
        if job == "expire":
            self.expire()
        elif job == "alerts":
            self.evaluate()

    # --- holds -------------------------------------------------------------------------

    @rule(index=st.integers(0, PRODUCTS - 1), quantity=st.integers(1, 5),
          ttl=st.sampled_from(TTLS))
    def reserve(self, index, quantity, ttl):
        self._reserve(index, quantity, ttl)

    @rule(index=st.integers(0, PRODUCTS - 1))
    def reserve_one_briefly(self, index):
        """The storefront's usual call; a second rule so holds are common in every run."""
        self._reserve(index, 1, 60)

    @precondition(lambda self: any(
        h.status == "active" and h.expires_at <= self.now for h in self.model.holds.values()))
    @rule(pick=st.integers(0, 1000), one_more=st.booleans())
    def reserve_what_lazy_expiry_frees(self, pick, one_more):
        """Ask for exactly what is free once the overdue holds are back (or one more)."""
        m = self.model
        due = sorted(i for i, h in m.holds.items()
                     if h.status == "active" and h.expires_at <= self.now)
        index = m.holds[due[pick % len(due)]].product
        freed = sum(h.quantity for h in m.holds.values() if h.product == index
                    and h.status == "active" and h.expires_at <= self.now)
        quantity = m.available(index) + freed + (1 if one_more else 0)
        if 1 <= quantity <= 10_000:
            self._reserve(index, quantity, 60)

    def _reserve(self, index, quantity, ttl):
        m, p = self.model, self.model.products[index]
        try:
            hold = services.reserve(p.sku, quantity, Owner(session_key="s"), ttl, now=self.now)
        except InactiveProduct:
            assert not p.active
            return
        except InsufficientStock as refused:
            assert p.active
            m.expire(self.now, index)  # lazy expiry is kept even when still refused
            assert m.available(index) < quantity
            assert refused.available == m.available(index)
        else:
            assert p.active
            if m.available(index) < quantity:
                m.expire(self.now, index)
            assert m.available(index) >= quantity
            m.holds[hold.id] = ModelHold(index, quantity, self.now,
                                         self.now + timedelta(seconds=ttl))
            m.ledger_rows += 1
        m.evaluate()

    def _pick(self, pick):
        ids = sorted(self.model.holds)
        return ids[pick % len(ids)]

    @precondition(lambda self: self.model.holds)
    @rule(pick=st.integers(0, 1000), commit=st.booleans())
    def end_hold(self, pick, commit):
        if commit:
            self.commit(pick)
        else:
            self.release(pick)

    def release(self, pick):
        hold_id = self._pick(pick)
        hold = self.model.holds[hold_id]
        try:
            services.release(hold_id, actor=self.manager, reason="test", now=self.now)
        except ReservationNotActive as refused:
            assert hold.status != "active" and refused.status == hold.status
        else:
            assert hold.status == "active"
            hold.status = "released"
            self.model.ledger_rows += 1
        self.model.evaluate()

    def commit(self, pick):
        hold_id = self._pick(pick)
        hold = self.model.holds[hold_id]
        try:
            services.commit(hold_id, actor=SYSTEM, now=self.now)
        except ReservationNotActive:
            assert hold.status != "active"
        else:
            assert hold.status == "active"
            hold.status = "committed"
            self.model.products[hold.product].on_hand -= hold.quantity
            self.model.ledger_rows += 1
        self.model.evaluate()

    @precondition(lambda self: self.model.holds)
    @rule(pick=st.integers(0, 1000), minutes=st.sampled_from([1, 10, 60, 119, 121]))
    def extend(self, pick, minutes):
        hold_id = self._pick(pick)
        hold = self.model.holds[hold_id]
        until = self.now + timedelta(minutes=minutes)
        try:
            services.extend(hold_id, until, actor=SYSTEM, now=self.now)
        except ReservationNotActive:
            assert hold.status != "active"
        except ExtendBeyondCap:
            assert until > hold.created_at + timedelta(hours=2)
        except InvalidInput:
            assert until <= hold.expires_at or hold.expires_at <= self.now
        else:
            assert hold.status == "active" and hold.expires_at < until
            assert hold.expires_at > self.now
            hold.expires_at = until

    def expire(self):
        result = services.expire_due(self.now)
        assert result.holds == self.model.expire(self.now)
        self.model.evaluate()

    # --- stock -------------------------------------------------------------------------

    @rule(index=st.integers(0, PRODUCTS - 1), delta=st.integers(-6, 6).filter(bool))
    def adjust(self, index, delta):
        m, p = self.model, self.model.products[index]
        try:
            services.adjust(p.sku, delta, reason="test", actor=self.manager, now=self.now)
        except BelowHeld:
            assert p.on_hand + delta < m.reserved(index)
        else:
            p.on_hand += delta
            m.ledger_rows += 1
        m.evaluate()

    @rule(index=st.integers(0, PRODUCTS - 1), counted=st.integers(0, 15), stale=st.booleans())
    def count(self, index, counted, stale):
        m, p = self.model, self.model.products[index]
        expected = p.on_hand + (1 if stale else 0)
        try:
            services.count(p.sku, counted, expected, actor=self.manager, now=self.now)
        except StaleCount as refused:
            assert stale and refused.current_on_hand == p.on_hand
        except BelowHeld:
            assert not stale and counted < m.reserved(index)
        else:
            assert not stale
            p.on_hand = counted
            m.ledger_rows += 1
        m.evaluate()

    @rule(counts=st.dictionaries(st.integers(0, PRODUCTS - 1), st.integers(0, 15), min_size=1))
    def import_counts(self, counts):
        m = self.model
        csv_text = "sku,on_hand\n" + "".join(
            f"{m.products[i].sku},{n}\n" for i, n in counts.items())
        try:
            report = services.import_counts(csv_text, actor=self.manager, now=self.now,
                                            apply=True)
        except ImportRejected as refused:
            bad = {i for i, n in counts.items() if n < m.reserved(i)}
            assert bad and len(refused.report.errors) == len(bad)
        else:
            assert all(n >= m.reserved(i) for i, n in counts.items())
            changed = [i for i, n in counts.items() if n != m.products[i].on_hand]
            assert len(report.changes) == len(changed)
            for i, n in counts.items():
                m.products[i].on_hand = n
            m.ledger_rows += len(changed)
        m.evaluate()

    # --- products and alerts -----------------------------------------------------------

    @rule(index=st.integers(0, PRODUCTS - 1), threshold=st.none() | st.integers(0, 6),
          active=st.none() | st.booleans())
    def edit_product(self, index, threshold, active):
        p = self.model.products[index]
        services.update_product(p.sku, low_stock_threshold=threshold, is_active=active,
                                actor=self.manager, now=self.now)
        p.threshold = p.threshold if threshold is None else threshold
        p.active = p.active if active is None else active
        self.model.evaluate()

    def evaluate(self):
        changes = services.evaluate_alerts(now=self.now)
        # Every service already evaluated what it changed: nothing is left to fix.
        assert changes.as_dict() == {"opened": 0, "escalated": 0, "deescalated": 0,
                                     "resolved": 0}

    def _alert_id(self, index):
        return db.session.scalar(select(StockAlert.id).where(
            StockAlert.product_id == self.model.products[index].id,
            StockAlert.status != "resolved"))

    @rule(index=st.integers(0, PRODUCTS - 1), resolve=st.booleans())
    def work_alert(self, index, resolve):
        if resolve:
            self.resolve(index)
        else:
            self.acknowledge(index)

    def acknowledge(self, index):
        p = self.model.products[index]
        alert_id = self._alert_id(index)
        assert (alert_id is None) == (p.alert is None)
        if alert_id is not None:
            services.acknowledge(alert_id, actor=self.manager, now=self.now)
            p.alert[1] = "acknowledged"

    def resolve(self, index):
        p = self.model.products[index]
        alert_id = self._alert_id(index)
        assert (alert_id is None) == (p.alert is None)
        if alert_id is not None:
            services.resolve(alert_id, actor=self.manager, note="handled", now=self.now)
            p.alert, p.muted = None, True

    # --- after every step ----------------------------------------------------------------

    @invariant()
    def database_matches_the_model(self):
        m = self.model
        if not m.products:
            return
        assert services.check() == []
        rows = db.session.execute(
            select(Product.sku, Product.on_hand, Product.reserved, Product.is_active,
                   Product.low_stock_threshold, Product.alert_muted).order_by(Product.id)
        ).all()
        assert rows == [(p.sku, p.on_hand, m.reserved(i), p.active, p.threshold, p.muted)
                        for i, p in enumerate(m.products)]
        holds = dict(db.session.execute(select(Reservation.id, Reservation.status)).all())
        assert holds == {i: h.status for i, h in m.holds.items()}
        alerts = {pid: [kind, status] for pid, kind, status in db.session.execute(
            select(StockAlert.product_id, StockAlert.kind, StockAlert.status)
            .where(StockAlert.status != "resolved"))}
        assert alerts == {p.id: p.alert for p in m.products if p.alert is not None}
        assert db.session.scalar(select(func.count()).select_from(StockMovement)) == (
            m.ledger_rows)
        db.session.commit()

    def teardown(self):
        db.session.remove()


def test_services_keep_the_invariants_and_match_the_model(app):
    run_state_machine_as_test(StockMachine, settings=settings(
        max_examples=30, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    ))
