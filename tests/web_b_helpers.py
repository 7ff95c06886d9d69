"""Test-client helpers for the holds, alerts, activity, jobs and admin pages."""
from __future__ import annotations

from dashboard.extensions import db
from dashboard.models import Cart, CartItem, Order


def make_cart(products_quantities, customer_id=None, now=None) -> Cart:
    cart = Cart(session_key=None, customer_id=customer_id, created_at=now, updated_at=now)
    db.session.add(cart)
    db.session.flush()
    for product, quantity in products_quantities:
        db.session.add(CartItem(cart_id=cart.id, product_id=product.id, quantity=quantity,
                                added_at=now))
    db.session.commit()
    return cart


def make_order(status="pending", customer_id=None, now=None) -> Order:
    order = Order(status=status, customer_id=customer_id, created_at=now, updated_at=now)
    db.session.add(order)
    db.session.commit()
    return order
