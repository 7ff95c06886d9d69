"""Products: finding one by SKU or id, creating one, and editing its settings (not stock)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import Product
from . import limits
from .actor import Actor
from .alerts import evaluate_all
from .errors import Conflict, InactiveProduct, InvalidInput, UnknownProduct
from .ledger import OPENING_STOCK, Move, apply_deltas, lock_products
from .locations import add_levels
from .transaction import transactional


def find_product(product: Product | str | int) -> Product:
    """A product by object, SKU or id; unknown -> UnknownProduct."""
    if isinstance(product, Product):
        return product
    if isinstance(product, str):
        # A NUL can be in no SKU (and PostgreSQL refuses it as a parameter).
        found = None if "\x00" in product else db.session.scalars(
            select(Product).where(Product.sku == product.strip())).first()
        label = f"SKU {product!r}"
    elif isinstance(product, int) and not isinstance(product, bool):
        found = db.session.get(Product, product) if 0 < product <= limits.MAX_ID else None
        label = f"product {product}"
    else:
        raise InvalidInput("sku must be text", field="sku")
    if found is None:
        raise UnknownProduct(f"no product with {label}")
    return found


def sellable_product(product: Product | str | int) -> Product:
    found = find_product(product)
    if not found.is_active:
        raise InactiveProduct(f"{found.sku} is inactive and cannot be reserved")
    return found


def fresh_product(product_id: int) -> Product:
    """The product as the database has it now (the session's copy is refreshed)."""
    return db.session.scalars(
        select(Product).where(Product.id == product_id)
        .execution_options(populate_existing=True)
    ).one()


@transactional
def update_product(
    product: Product | str | int, *, actor: Actor, now: datetime,
    low_stock_threshold: int | None = None, is_active: bool | None = None,
    name: str | None = None, price=None,
) -> Product:
    """Edit product settings (not stock); alerts are re-evaluated for the new threshold."""
    found = find_product(product)
    values: dict = {}
    if low_stock_threshold is not None:
        values["low_stock_threshold"] = limits.require_whole_number(
            low_stock_threshold, "low_stock_threshold", 0, limits.MAX_THRESHOLD, "threshold"
        )
    if is_active is not None:
        if not isinstance(is_active, bool):
            raise InvalidInput("active must be yes or no", field="is_active")
        values["is_active"] = is_active
    if name is not None:
        values["name"] = _product_name(name)
    if price is not None:
        values["price"] = _price(price)
    if not values:
        return found
    lock_products([found.id])
    db.session.execute(
        update(Product).where(Product.id == found.id).values(updated_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    evaluate_all([found.id], now)
    return fresh_product(found.id)


@transactional
def create_product(
    sku: str, name: str, *, actor: Actor, now: datetime, price="0", on_hand: int = 0,
    low_stock_threshold: int = 10,
) -> Product:
    """A new product; opening stock is a ledger 'receive' like any other. Its SKU must be
    one every page can show and link to (`limits.sku_text`)."""
    sku = limits.sku_text(sku)
    product = Product(
        sku=sku, name=_product_name(name), price=_price(price), on_hand=0, reserved=0,
        low_stock_threshold=limits.require_whole_number(
            low_stock_threshold, "low_stock_threshold", 0, limits.MAX_THRESHOLD, "threshold"),
        is_active=True, created_at=now, updated_at=now,
    )
    on_hand = limits.require_whole_number(on_hand, "on_hand", 0, limits.MAX_STOCK)
    db.session.add(product)
    try:
        db.session.flush()
    except IntegrityError:  # @transactional rolls back
        raise Conflict(f"a product with SKU {sku} already exists")
    add_levels({product.id: 0})
    if on_hand:
        apply_deltas([Move(product.id, "receive", on_hand_delta=on_hand, reason=OPENING_STOCK)],
                     actor, now)
    evaluate_all([product.id], now)
    return fresh_product(product.id)


def _product_name(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise InvalidInput("name must be 1 to 200 characters", field="name")
    return limits.no_nul(name, "name")


def _price(value) -> Decimal:
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput("price must be a number like 12.50", field="price") from None
    if not price.is_finite() or price < 0 or price >= Decimal("100000000"):
        raise InvalidInput("price must be between 0 and 99,999,999.99", field="price")
    return price.quantize(Decimal("0.01"))
