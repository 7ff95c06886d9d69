"""Who a hold is for, in the storefront's terms: a session, a customer, a cart or an order."""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..extensions import db
from ..models import Cart, Order
from . import limits
from .actor import SYSTEM, Actor
from .errors import InvalidInput


@dataclass(frozen=True)
class Owner:
    """Who a hold is for; at least one field is set."""

    session_key: str | None = None
    customer_id: int | None = None
    cart_id: int | None = None
    order_id: int | None = None

    def describe(self) -> str:
        parts = []
        if self.order_id is not None:
            parts.append(f"order {self.order_id}")
        if self.cart_id is not None:
            parts.append(f"cart {self.cart_id}")
        if self.customer_id is not None:
            parts.append(f"customer {self.customer_id}")
        if self.session_key is not None:
            parts.append(f"session {self.session_key}")
        return ", ".join(parts)


def checked_owner(owner: Owner | None, actor: Actor = SYSTEM) -> Owner:
    """The owner with its ids as ints, or a refusal naming the bad field."""
    if not isinstance(owner, Owner) or not any(
        v is not None for v in (owner.session_key, owner.customer_id, owner.cart_id, owner.order_id)
    ):
        raise InvalidInput(
            "a hold needs an owner: session_key, customer_id, cart_id or order_id", field="owner"
        )
    if owner.session_key is not None:
        if not isinstance(owner.session_key, str) or not owner.session_key.strip():
            raise InvalidInput("session_key must be non-empty text", field="session_key")
        if len(owner.session_key) > limits.MAX_SESSION_KEY:
            raise InvalidInput(
                f"session_key must be at most {limits.MAX_SESSION_KEY} characters",
                field="session_key",
            )
        limits.no_nul(owner.session_key, "session_key")
    if owner.customer_id is not None:
        owner = replace(owner, customer_id=limits.require_whole_number(
            owner.customer_id, "customer_id", 1, limits.MAX_CUSTOMER_ID))
    if owner.cart_id is not None:
        owner = replace(owner, cart_id=limits.require_whole_number(
            owner.cart_id, "cart_id", 1, limits.MAX_ID))
        cart = db.session.get(Cart, owner.cart_id)
        if cart is None or not actor.reaches(cart.api_client_id):
            raise InvalidInput(f"cart {owner.cart_id} does not exist", field="cart_id")
    if owner.order_id is not None:
        owner = replace(owner, order_id=limits.require_whole_number(
            owner.order_id, "order_id", 1, limits.MAX_ID))
        order = db.session.get(Order, owner.order_id)
        if order is None or not actor.reaches(order.api_client_id):
            raise InvalidInput(f"order {owner.order_id} does not exist", field="order_id")
    return owner
