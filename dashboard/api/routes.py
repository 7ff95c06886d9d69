"""The calls of SPEC §7. Each view validates, calls one service, and says what happened."""
from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

from flask import g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .. import services
from ..extensions import db
from ..models import Order, Product, Reservation
from ..observability.metrics import reserve_outcome
from ..services import limits
from ..services.errors import NotFound, StockroomError, UnknownProduct
from ..services.transaction import NotOneStatement, unit_of_work
from . import bp, idempotency, schemas
from .body import read_json
from .errors import ApiError, iso, refusal
from .levels import levels_of



def post(rule: str, body: schemas.Body, remembers: bool = False):
    """Register a POST view `view(values, now, **path_ids) -> (json, status)`.

    Around it: JSON body reading (400/413/415), validation against `body` (422), and one
    transaction holding the call's effect and its answer (with an Idempotency-Key, the key
    and the stored answer too; see `idempotency`). Service refusals become JSON here. The
    view builds its answer before that transaction commits: nothing is read after it.

    `remembers`: with a key, the view is first called with `remembered=` (the key), which
    its service stores with its answer in its one statement, or raises NotOneStatement
    having changed nothing; then the key is claimed first as for any call.
    """
    def decorate(view):
        @functools.wraps(view)
        def handle(**path):
            data, canonical = read_json()
            key = request.headers.get("Idempotency-Key")
            if key is not None and not schemas.IDEMPOTENCY_KEY.fullmatch(key):
                raise ApiError(400, "invalid_idempotency_key",
                               "Idempotency-Key must be 1 to 255 visible ASCII characters")
            values = body.clean(data)
            now = datetime.now(timezone.utc)
            if key is None:
                return _json(*_answer(view, values, now, path))
            digest = idempotency.request_hash(request.method, request.path, canonical)
            if remembers:
                key_claim = idempotency.remembered(g.actor.id, key, digest)
                try:
                    with unit_of_work(savepoints=False, single_call=True):
                        return _json(*view(values, now, remembered=key_claim, **path))
                except (NotOneStatement, StockroomError, ApiError):
                    pass  # nothing was changed: the key is claimed first, below
            with unit_of_work(savepoints=False) as work:
                owned = idempotency.claim(g.actor.id, key, digest, now)
                if not isinstance(owned, int):
                    return _replayed(owned)
                try:
                    answer = view(values, now, **path)
                except (StockroomError, ApiError) as error:
                    work.discard()  # the effect and the claim: nothing was changed
                    refused = error
                else:
                    idempotency.store(owned, *answer)
                    return _json(*answer)
            answer = _refusal(refused)
            with unit_of_work(savepoints=False):  # the refusal is the key's answer
                owned = idempotency.claim(g.actor.id, key, digest, now)
                if not isinstance(owned, int):  # a retry got in between: one answer for both
                    return _replayed(owned)
                idempotency.store(owned, *answer)
            return _json(*answer)

        bp.add_url_rule(rule, view_func=handle, methods=["POST"])
        return handle

    return decorate


def _answer(view, values: dict, now: datetime, path: dict) -> tuple[object, int]:
    """Without a key: the call and its answer in one flat transaction; a refusal rolls it
    all back (so 'nothing was changed' is true) and is answered after. Each view is one
    service call answered from what it returns: a call that is one statement commits it
    by itself (`transaction.run_alone`)."""
    try:
        with unit_of_work(savepoints=False, single_call=True):
            return view(values, now, **path)
    except (StockroomError, ApiError) as error:
        return _refusal(error)


def _refusal(error: StockroomError | ApiError) -> tuple[object, int]:
    if isinstance(error, ApiError):
        return error.payload(), error.status
    return refusal(error)


def _replayed(answer: tuple[dict, int]):
    response = _json(*answer)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _json(body, status: int):
    response = jsonify(body)
    response.status_code = status
    return response


def _path_id(value: str, what: str, high: int) -> int:
    """An id from the URL; anything that cannot be one is simply not found."""
    if value.isascii() and value.isdigit() and len(value) <= 19 and 1 <= int(value) <= high:
        return int(value)
    raise NotFound(f"no {what} with id {value[:40]}")


def reservation_json(hold: Reservation, sku: str | None = None) -> dict:
    return {
        "id": hold.id, "sku": sku or hold.product.sku, "location": hold.location.code,
        "quantity": hold.quantity, "status": hold.status, "expires_at": iso(hold.expires_at),
        "created_at": iso(hold.created_at), "ended_at": iso(hold.ended_at),
        "end_reason": hold.end_reason, "session_key": hold.session_key,
        "customer_id": hold.customer_id, "cart_id": hold.cart_id, "order_id": hold.order_id,
    }


def order_json(order: Order) -> dict:
    return {"id": order.id, "status": order.status, "customer_id": order.customer_id,
            "total": f"{order.total:.2f}", "updated_at": iso(order.updated_at)}


@bp.get("/ping")
def ping():
    return {}


@bp.get("/products/<sku:sku>")
def product(sku: str):
    found = None
    if len(sku) <= limits.MAX_SKU and "\x00" not in sku:
        found = db.session.scalars(select(Product).where(Product.sku == sku)).first()
    if found is None:
        raise UnknownProduct(f"no product with SKU {sku[:limits.MAX_SKU]}")
    return {
        "sku": found.sku, "name": found.name, "on_hand": found.on_hand,
        "reserved": found.reserved, "available": found.available,
        "locations": levels_of([found.id])[found.id],
        "low_stock_threshold": found.low_stock_threshold, "is_active": found.is_active,
    }


@post("/reservations", schemas.NEW_RESERVATION, remembers=True)
def create_reservation(values: dict, now: datetime,
                       remembered: services.Remembered | None = None):
    owner = services.Owner(**{k: values.get(k) for k in schemas.NEW_RESERVATION.one_of})
    # The service matched the SKU exactly (after trimming); naming it saves loading the
    # product. It attached the location's code to the hold: no read for that either.
    sku = values["sku"].strip()

    def answer(hold: Reservation) -> tuple[dict, int]:
        return reservation_json(hold, sku=sku), 201

    with reserve_outcome("reservation"):
        hold = services.reserve(values["sku"], values["quantity"], owner,
                                values.get("ttl_seconds"), location=values.get("location"),
                                actor=g.actor, now=now,
                                remembered=remembered and remembered._replace(answer=answer))
    return answer(hold)


@bp.get("/reservations/<reservation_id>")
def reservation(reservation_id: str):
    rid = _path_id(reservation_id, "reservation", schemas.MAX_INT64)
    hold = db.session.scalars(
        select(Reservation).options(joinedload(Reservation.product),
                                    joinedload(Reservation.location))
        .where(Reservation.id == rid)
    ).first()
    if hold is None or not g.actor.reaches(hold.created_by_api_client_id):
        raise NotFound(f"no reservation with id {rid}")  # another storefront's: not found either
    return reservation_json(hold)


@post("/reservations/<reservation_id>/release", schemas.RELEASE)
def release(values: dict, now: datetime, reservation_id: str):
    rid = _path_id(reservation_id, "reservation", schemas.MAX_INT64)
    reason = (values.get("reason") or "").strip() or "released through the storefront API"
    return reservation_json(services.release(rid, actor=g.actor, reason=reason, now=now)), 200


@post("/reservations/<reservation_id>/commit", schemas.COMMIT)
def commit(values: dict, now: datetime, reservation_id: str):
    rid = _path_id(reservation_id, "reservation", schemas.MAX_INT64)
    reason = (values.get("reason") or "").strip() or None
    return reservation_json(services.commit(rid, actor=g.actor, reason=reason, now=now)), 200


@post("/reservations/<reservation_id>/extend", schemas.EXTEND)
def extend(values: dict, now: datetime, reservation_id: str):
    rid = _path_id(reservation_id, "reservation", schemas.MAX_INT64)
    until = now + timedelta(seconds=values["ttl_seconds"])
    return reservation_json(services.extend(rid, until, actor=g.actor, now=now)), 200


@post("/carts/<cart_id>/reserve", schemas.CART_RESERVE)
def reserve_cart(values: dict, now: datetime, cart_id: str):
    cid = _path_id(cart_id, "cart", schemas.MAX_INT32)
    with reserve_outcome("cart"):
        holds = services.reserve_cart(cid, values.get("ttl_seconds"), actor=g.actor, now=now)
    return [reservation_json(hold) for hold in holds], 201


@post("/orders/<order_id>/confirm", schemas.CONFIRM)
def confirm_order(values: dict, now: datetime, order_id: str):
    oid = _path_id(order_id, "order", schemas.MAX_INT32)
    return order_json(services.confirm_order(oid, actor=g.actor, now=now)), 200


@post("/orders/<order_id>/cancel", schemas.CANCEL)
def cancel_order(values: dict, now: datetime, order_id: str):
    oid = _path_id(order_id, "order", schemas.MAX_INT32)
    reason = (values.get("reason") or "").strip() or None
    return order_json(services.cancel_order(oid, actor=g.actor, now=now, reason=reason)), 200
