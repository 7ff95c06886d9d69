"""Bad input to every service: always a typed StockroomError with a sentence, never a crash
(IntegrityError, DataError, OverflowError, TypeError, ValueError) and never a partial change."""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from dashboard import services
from dashboard.services import SYSTEM, Owner
from dashboard.services.errors import (
    BelowHeld,
    Conflict,
    ImportRejected,
    InactiveProduct,
    InvalidInput,
    NotFound,
    StockroomError,
    UnknownProduct,
)
from tests.helpers.records import make_cart, make_order
from tests.services.helpers import SESSION, snapshot, unresolved_alert

HUGE = [2**31, 2**63, -(2**63)]
WRONG_TYPE = [1.5, 1.0, True, "abc", "²", "9" * 5000, None, [1]]


@pytest.fixture
def world(product_factory, now):
    product = product_factory("BAD-1", on_hand=10, threshold=3)
    off = product_factory("OFF-1", on_hand=10)
    services.update_product(off.sku, is_active=False, actor=SYSTEM, now=now)
    low = product_factory("LOW-1", on_hand=1, threshold=3)
    hold = services.reserve(product.sku, 2, SESSION, now=now)
    return SimpleNamespace(
        sku=product.sku, product_id=product.id, hold_id=hold.id,
        alert_id=unresolved_alert(low.id).id, cart_id=make_cart(now, {product.id: 1}),
        order_id=make_order(now, {product.id: 1}),
    )


def _cases():
    """(name, call(world, now), expected refusal) for every service and every bad value."""
    cases = []

    def add(name, call, error=InvalidInput):
        cases.append((name, call, error))

    def reserve(w, now, **kw):
        args = {"product": w.sku, "quantity": 1, "owner": SESSION, "ttl_seconds": None}
        args.update(kw)
        return services.reserve(args["product"], args["quantity"], args["owner"],
                                args["ttl_seconds"], now=now)

    for q in [0, -1, *HUGE, 10_001, *WRONG_TYPE]:
        add(f"reserve-quantity-{q!r:.20}", lambda w, now, q=q: reserve(w, now, quantity=q))
    for t in [0, -1, 59, *HUGE, *WRONG_TYPE[:-2]]:
        add(f"reserve-ttl-{t!r:.20}", lambda w, now, t=t: reserve(w, now, ttl_seconds=t))
    add("reserve-unknown-sku", lambda w, now: reserve(w, now, product="NOPE"), UnknownProduct)
    add("reserve-nul-sku", lambda w, now: reserve(w, now, product="BAD\x00"), UnknownProduct)
    add("reserve-inactive", lambda w, now: reserve(w, now, product="OFF-1"), InactiveProduct)
    for p in [0, -1, *HUGE]:
        add(f"reserve-product-id-{p}", lambda w, now, p=p: reserve(w, now, product=p),
            UnknownProduct)
    for p in [1.5, None, [1], b"BAD-1"]:
        add(f"reserve-product-{p!r}", lambda w, now, p=p: reserve(w, now, product=p))
    owners = {
        "none": None, "empty": Owner(), "dict": {"session_key": "x"},
        "blank-session": Owner(session_key="  "), "long-session": Owner(session_key="x" * 41),
        "int-session": Owner(session_key=5), "nul-session": Owner(session_key="a\x00b"),
        "customer-0": Owner(customer_id=0), "customer-2^63": Owner(customer_id=2**63),
        "customer-float": Owner(customer_id=1.5), "customer-bool": Owner(customer_id=True),
        "customer-text": Owner(customer_id="abc"), "cart-2^31": Owner(cart_id=2**31),
        "cart-unknown": Owner(cart_id=999), "order-negative": Owner(order_id=-1),
        "order-unknown": Owner(order_id=999),
    }
    for name, owner in owners.items():
        add(f"reserve-owner-{name}", lambda w, now, o=owner: reserve(w, now, owner=o))

    for c in [0, -1, *HUGE, *WRONG_TYPE]:
        add(f"reserve-cart-{c!r:.20}",
            lambda w, now, c=c: services.reserve_cart(c, now=now))
    add("reserve-cart-unknown", lambda w, now: services.reserve_cart(4242, now=now), NotFound)
    add("reserve-cart-ttl", lambda w, now: services.reserve_cart(w.cart_id, 1.5, now=now))

    bad_ids = [0, -1, 2**63, 1.5, True, None, "abc", "²"]
    for i in bad_ids:
        add(f"release-id-{i!r}", lambda w, now, i=i: services.release(
            i, actor=SYSTEM, reason="x", now=now))
        add(f"commit-id-{i!r}", lambda w, now, i=i: services.commit(i, actor=SYSTEM, now=now))
        add(f"extend-id-{i!r}", lambda w, now, i=i: services.extend(
            i, now + timedelta(minutes=30), actor=SYSTEM, now=now))
        add(f"confirm-order-{i!r}", lambda w, now, i=i: services.confirm_order(
            i, actor=SYSTEM, now=now))
        add(f"cancel-order-{i!r}", lambda w, now, i=i: services.cancel_order(
            i, actor=SYSTEM, now=now))
        add(f"acknowledge-{i!r}", lambda w, now, i=i: services.acknowledge(
            i, actor=SYSTEM, now=now))
        add(f"resolve-{i!r}", lambda w, now, i=i: services.resolve(
            i, actor=SYSTEM, note="x", now=now))
    add("release-unknown", lambda w, now: services.release(
        999, actor=SYSTEM, reason="x", now=now), NotFound)
    add("acknowledge-unknown", lambda w, now: services.acknowledge(
        999, actor=SYSTEM, now=now), NotFound)
    for r in [None, "", "   ", 5, "x" * 501, "a\x00b"]:
        add(f"release-reason-{r!r:.12}", lambda w, now, r=r: services.release(
            w.hold_id, actor=SYSTEM, reason=r, now=now))
        add(f"release-many-reason-{r!r:.12}", lambda w, now, r=r: services.release_many(
            [w.hold_id], actor=SYSTEM, reason=r, now=now))
        add(f"adjust-reason-{r!r:.12}", lambda w, now, r=r: services.adjust(
            w.sku, 1, reason=r, actor=SYSTEM, now=now))
        add(f"resolve-note-{r!r:.12}", lambda w, now, r=r: services.resolve(
            w.alert_id, actor=SYSTEM, note=r, now=now))
        add(f"repair-reason-{r!r:.12}", lambda w, now, r=r: services.repair(
            actor=SYSTEM, now=now, reason=r))
    for r in [5, "x" * 501, "a\x00b"]:
        add(f"commit-reason-{r!r:.12}", lambda w, now, r=r: services.commit(
            w.hold_id, actor=SYSTEM, now=now, reason=r))
        add(f"cancel-reason-{r!r:.12}", lambda w, now, r=r: services.cancel_order(
            w.order_id, actor=SYSTEM, now=now, reason=r))
        add(f"count-note-{r!r:.12}", lambda w, now, r=r: services.count(
            w.sku, 9, 10, actor=SYSTEM, now=now, note=r))
    for ids in [None, [], [0], [1.5], [None], "abc", 5]:
        add(f"release-many-{ids!r}", lambda w, now, ids=ids: services.release_many(
            ids, actor=SYSTEM, reason="x", now=now))
    for until in [None, "tomorrow", 5, datetime(2026, 11, 21, 13, 0)]:
        add(f"extend-until-{until!r:.20}", lambda w, now, u=until: services.extend(
            w.hold_id, u, actor=SYSTEM, now=now))
    add("extend-until-earlier", lambda w, now: services.extend(
        w.hold_id, now - timedelta(minutes=1), actor=SYSTEM, now=now))

    for d in [0, *HUGE, 1_000_001, *WRONG_TYPE]:
        add(f"adjust-delta-{d!r:.20}", lambda w, now, d=d: services.adjust(
            w.sku, d, reason="x", actor=SYSTEM, now=now))
    add("adjust-below-held", lambda w, now: services.adjust(
        w.sku, -9, reason="x", actor=SYSTEM, now=now), BelowHeld)
    add("adjust-kind", lambda w, now: services.adjust(
        w.sku, 1, reason="x", actor=SYSTEM, now=now, kind="steal"))
    add("adjust-unknown", lambda w, now: services.adjust(
        "NOPE", 1, reason="x", actor=SYSTEM, now=now), UnknownProduct)
    for v in [-1, *HUGE, *WRONG_TYPE]:
        add(f"count-counted-{v!r:.20}", lambda w, now, v=v: services.count(
            w.sku, v, 10, actor=SYSTEM, now=now))
        add(f"count-expected-{v!r:.20}", lambda w, now, v=v: services.count(
            w.sku, 9, v, actor=SYSTEM, now=now))
    add("count-unknown", lambda w, now: services.count(
        "NOPE", 1, 1, actor=SYSTEM, now=now), UnknownProduct)
    add("count-below-held", lambda w, now: services.count(
        w.sku, 1, 10, actor=SYSTEM, now=now), BelowHeld)

    for text in [None, 5, b"sku,on_hand\nBAD-1,3\n", "sku,on_hand\n"]:
        add(f"import-{text!r:.20}", lambda w, now, t=text: services.import_counts(
            t, actor=SYSTEM, now=now, apply=True))
    for value in ["-1", "²", "9" * 5000, "1.5", "abc", "", "2147483648", "99999999999999999999"]:
        add(f"import-value-{value:.12}", lambda w, now, v=value: services.import_counts(
            f"sku,on_hand\nBAD-1,{v}\n", actor=SYSTEM, now=now, apply=True), ImportRejected)
        add(f"import-delta-{value:.12}", lambda w, now, v=value: services.import_counts(
            f"sku,delta\nBAD-1,-{v}\n", actor=SYSTEM, now=now, apply=True), ImportRejected)
    add("import-nul-sku", lambda w, now: services.import_counts(
        "sku,on_hand\nBAD\x00,1\n", actor=SYSTEM, now=now, apply=True), ImportRejected)

    for t in [-1, *HUGE, 1.5, True, "abc", "²"]:
        add(f"update-threshold-{t!r:.20}", lambda w, now, t=t: services.update_product(
            w.sku, actor=SYSTEM, now=now, low_stock_threshold=t))
    for a in ["false", "no", 0.0, 5]:
        add(f"update-is-active-{a!r}", lambda w, now, a=a: services.update_product(
            w.sku, actor=SYSTEM, now=now, is_active=a))
    for n in ["", "x" * 201, 5, "a\x00b"]:
        add(f"update-name-{n!r:.12}", lambda w, now, n=n: services.update_product(
            w.sku, actor=SYSTEM, now=now, name=n))
    for p in ["-1", "abc", "NaN", "Infinity", "1e100", "100000000", True, [1]]:
        add(f"update-price-{p!r}", lambda w, now, p=p: services.update_product(
            w.sku, actor=SYSTEM, now=now, price=p))
    add("update-unknown", lambda w, now: services.update_product(
        "NOPE", actor=SYSTEM, now=now, name="x"), UnknownProduct)
    for sku in ["", None, 5, "x" * 101, "  ", "a\x00b"]:
        add(f"create-sku-{sku!r:.12}", lambda w, now, s=sku: services.create_product(
            s, "Name", actor=SYSTEM, now=now))
    add("create-duplicate", lambda w, now: services.create_product(
        "BAD-1", "Again", actor=SYSTEM, now=now), Conflict)
    for v in [-1, *HUGE, 1.5, True, "abc"]:
        add(f"create-on-hand-{v!r:.20}", lambda w, now, v=v: services.create_product(
            "NEW-1", "Name", actor=SYSTEM, now=now, on_hand=v))
        add(f"create-threshold-{v!r:.20}", lambda w, now, v=v: services.create_product(
            "NEW-1", "Name", actor=SYSTEM, now=now, low_stock_threshold=v))
    for b in [0, -1, 2**63, 1.5, True, "abc", None]:
        add(f"expire-batch-{b!r}", lambda w, now, b=b: services.expire_due(now, batch=b))
    return cases


def _groups():
    """Cases grouped by service and argument, so the fixture runs once per group."""
    groups: dict[str, list] = {}
    for name, call, error in _cases():
        groups.setdefault("-".join(name.split("-")[:2]), []).append((name, call, error))
    return [pytest.param(cases, id=key) for key, cases in groups.items()]


def _problem(world, now, call, error) -> str | None:
    before = snapshot()
    try:
        call(world, now)
    except StockroomError as refused:
        if error is not None and not isinstance(refused, error):
            return f"{refused!r} is not a {error.__name__}"
        if not refused.message or refused.message != str(refused):
            return f"{refused!r} has no message"
        if isinstance(refused, InvalidInput) and refused.http_status != 422:
            return f"{refused!r} is not 422"
        if not 400 <= refused.http_status < 500:
            return f"{refused!r} maps to {refused.http_status}"
    except Exception as crash:  # noqa: BLE001 (the point: anything else is a bug)
        return f"crashed with {crash!r:.300}"
    else:
        return "was accepted"
    if snapshot() != before:
        return "changed the database although refused"
    return None


@pytest.mark.parametrize("cases", _groups())
def test_bad_input_is_refused_with_a_sentence_and_changes_nothing(world, now, cases):
    problems = {}
    for name, call, error in cases:
        problem = _problem(world, now, call, error)
        if problem:
            problems[name] = problem
    assert problems == {}


@pytest.mark.parametrize("sku, message", [
    ("RTL\u202eLIAM", "printable"), ("ISO\u2066X", "printable"), ("TAB\tX", "printable"),
    ("X/../../admin", "segment"), ("./X", "segment"), ("A/./B", "segment"),
    ("", "1 to 100"), ("S" * 101, "1 to 100"), ("NUL\x00", "printable"),
])
def test_a_sku_that_cannot_be_shown_or_linked_is_refused_at_creation(sku, message, now):

    with pytest.raises(InvalidInput, match=message):
        services.create_product(sku, "Name", actor=SYSTEM, now=now)


def test_a_sku_with_slashes_and_dots_inside_segments_is_fine(now):

    product = services.create_product("  A/B.C/..D  ", "Name", actor=SYSTEM, now=now)
    assert product.sku == "A/B.C/..D"


def test_a_new_hold_cannot_outlive_the_extension_cap(app, product_factory, now, monkeypatch):

    product_factory("CAP-1", on_hand=5)
    monkeypatch.setitem(app.config, "HOLD_EXTEND_CAP", 3600)
    with pytest.raises(InvalidInput, match="at most 3600"):
        services.reserve("CAP-1", 1, Owner(session_key="s"), 3601, now=now)
    assert services.reserve("CAP-1", 1, Owner(session_key="s"), 3600, now=now).status == "active"
