"""Records written and read straight from the database, around the services.

The storefront's carts and orders (the dashboard reads them and never writes them), a
product's two counters and its stock level at a location as the database has them, and a
second location. Every layer's tests use these.
"""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from dashboard.extensions import db
from dashboard import services
from dashboard.models import Cart, CartItem, Location, Order, OrderItem, Product, StockLevel


def make_cart(now, items: dict[int, int], customer_id: int | None = 7,
              storefront: int | None = None) -> int:
    """A cart of the storefront whose API client id is `storefront` (none: no storefront's)
    holding {product_id: quantity}; returns its id."""
    cart = Cart(customer_id=customer_id, api_client_id=storefront, created_at=now,
                updated_at=now)
    db.session.add(cart)
    db.session.flush()
    for product_id, quantity in items.items():
        db.session.add(CartItem(cart_id=cart.id, product_id=product_id, quantity=quantity,
                                added_at=now))
    db.session.commit()
    return cart.id


def make_order(now, items: dict[int, int], status: str = "pending",
               storefront: int | None = None) -> int:
    """An order of the storefront whose API client id is `storefront`, of
    {product_id: quantity} (one price for all); returns its id."""
    order = Order(customer_id=7, status=status, total=Decimal("0"), api_client_id=storefront,
                  created_at=now, updated_at=now)
    db.session.add(order)
    db.session.flush()
    for product_id, quantity in items.items():
        db.session.add(OrderItem(order_id=order.id, product_id=product_id, quantity=quantity,
                                 price=Decimal("1.00")))
    db.session.commit()
    return order.id


def counters(product_id: int) -> tuple[int, int]:
    """(on_hand, reserved) straight from the database, bypassing the identity map."""
    row = db.session.execute(
        select(Product.on_hand, Product.reserved).where(Product.id == product_id)
    ).one()
    db.session.commit()
    return tuple(row)


def high_street_store(now) -> Location:
    """A second location, a store after MAIN in priority order (STORE-1)."""
    from dashboard.services.locations import create_location
    return create_location("STORE-1", "High Street store", kind="store", priority=200,
                           actor=services.SYSTEM, now=now)


def level_at(product_id: int, code: str) -> StockLevel:
    """The product's stock level at the location with `code`, read fresh."""
    db.session.expire_all()
    return db.session.scalars(select(StockLevel).join(Location).where(
        StockLevel.product_id == product_id, Location.code == code)).one()
