"""Demo data that looks like a real shop, made through the services so the ledger is true.

About 500 products over six departments with a spread of stock levels, two weeks of stock
history, carts, orders in every status, active holds expiring over the next 30 minutes, a
few stuck ones of each kind, and open, acknowledged and resolved alerts. The shop keeps
stock at four locations: MAIN (the default), a second warehouse that does not sell, and two
stores, with holds at MAIN and at both stores, and transfers from the second warehouse to
the stores (one received, one in transit, one a draft).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import delete, func, select, text, update

from . import services
from .extensions import db
from .models import (
    ApiClient, Cart, CartItem, Order, OrderItem, Product, Reservation, StaffUser, StockAlert,
    StockLevel, StockMovement,
)
from .services import Actor, Owner
from .services.catalogue import upsert_products
from .services.catalogue_fields import gtin_check_digit
from .services.errors import StockroomError
from .services import transfers
from .services.locations import (
    create_location, default_location, find_location, update_location,
)
from .services.transaction import transaction

DEMO_PASSWORD = "stockroom-demo"
STAFF = [
    ("admin@stockroom.example", "admin", "Avery Admin"),
    ("manager@stockroom.example", "manager", "Morgan Manager"),
    ("merch@stockroom.example", "merchandiser", "Mina Merchandiser"),
    ("support@stockroom.example", "support", "Sam Support"),
    ("viewer@stockroom.example", "viewer", "Vic Viewer"),
]

PRICES = [9, 12, 15, 19, 24, 29, 39, 49, 65, 89, 120]
DEPARTMENTS = {
    "APP": ("Apparel", ["Merino Crew Socks", "Organic Cotton Tee", "Linen Overshirt",
                        "Quilted Vest", "Rain Shell Jacket", "Wool Beanie", "Chino Shorts",
                        "Fleece Pullover"],
            ["Charcoal", "Navy", "Oat", "Forest", "Rust"], ["S", "M", "L", "XL"]),
    "KIT": ("Kitchen", ["Cast Iron Skillet 26cm", "Chef's Knife 20cm", "Enamel Dutch Oven",
                        "Pour-Over Kettle", "Bamboo Cutting Board", "Stoneware Mug",
                        "Glass Storage Jar"],
            ["Black", "Cream", "Sage", "Terracotta", "Cobalt"], [""]),
    "HOM": ("Home", ["Waffle Bath Towel", "Linen Duvet Cover", "Soy Candle", "Wool Throw",
                     "Ceramic Planter", "Jute Doormat"],
            ["White", "Sand", "Slate", "Moss"], ["", "Large"]),
    "OUT": ("Outdoor", ["Trail Water Bottle 750ml", "Packable Daypack 20L", "Camp Mug",
                        "Headlamp 300lm", "Trekking Poles", "Insulated Flask 1L"],
            ["Black", "Orange", "Olive"], [""]),
    "ELE": ("Electronics", ["USB-C Cable 2m", "Wireless Charger Pad", "Laptop Sleeve 14\"",
                            "Bluetooth Speaker Mini", "Power Bank 10000mAh"],
            ["Black", "White", "Grey"], [""]),
    "STA": ("Stationery", ["Dot Grid Notebook A5", "Fountain Pen", "Brass Pencil Sharpener",
                           "Kraft Envelopes (50)", "Desk Organiser", "Weekly Planner 2027"],
            ["Black", "Blue", "Natural", "Red"], [""]),
    "BEA": ("Beauty", ["Shea Hand Cream 75ml", "Solid Shampoo Bar", "Cedar Beard Oil",
                       "Mineral Sunscreen SPF50", "Lip Balm Trio", "Clay Face Mask"],
            ["Unscented", "Lavender", "Citrus", "Vetiver"], ["", "Travel"]),
    "TOY": ("Toys", ["Wooden Stacking Rings", "Plush Fox", "Marble Run Starter Set",
                     "Jigsaw 1000pc Alpine", "Kite Delta", "Magnetic Tiles 60pc"],
            ["Classic", "Pastel", "Bright"], [""]),
    "PET": ("Pets", ["Rope Tug Toy", "Waxed Canvas Leash", "Orthopedic Dog Bed",
                     "Ceramic Cat Bowl", "Reflective Harness"],
            ["Tan", "Black", "Teal"], ["S", "M", "L"]),
    "GAR": ("Garden", ["Hori Hori Knife", "Galvanised Watering Can", "Seed Starter Trays",
                       "Bypass Pruners", "Herb Planter Box", "Garden Kneeler"],
            ["Green", "Grey", "Natural", "Yellow"], [""]),
    "SPO": ("Sports", ["Yoga Mat 5mm", "Resistance Band Set", "Cork Yoga Block",
                       "Jump Rope Speed", "Foam Roller", "Gym Towel"],
            ["Black", "Plum", "Teal", "Sand"], [""]),
    "BAB": ("Baby", ["Muslin Swaddle", "Knit Baby Booties", "Silicone Teether",
                     "Organic Sleepsuit", "Board Book Set"],
            ["Oat", "Sky", "Rose", "Mint"], [""]),
}


def has_data() -> bool:
    return bool(db.session.scalar(select(func.count()).select_from(Product))) or bool(
        db.session.scalar(select(func.count()).select_from(StaffUser))
    )


def reset_all() -> None:
    """Empty every table (the demo's --reset) but the default location, which the schema
    promises is always there (migration 0009 made it)."""
    tables = [t.name for t in reversed(db.metadata.sorted_tables) if t.name != "locations"]
    with transaction():
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                db.session.execute(text(f"DELETE FROM {table}"))
        db.session.execute(text("DELETE FROM locations WHERE NOT is_default"))


# Besides MAIN: (code, name, kind, sellable, priority). The back-room warehouse keeps
# overflow stock the storefront may not hold; the stores sell, after MAIN.
LOCATIONS = [
    ("NORTH", "North warehouse", "warehouse", False, 10),
    ("STORE-1", "High Street store", "store", True, 20),
    ("STORE-2", "Station store", "store", True, 30),
]

SUPPLIERS = ["Northwind Trading", "Acme Wholesale", "Blue Harbor Goods", "Fjord & Field",
             "Kestrel Supply Co.", "Lumen Makers"]


def _ean13(n: int) -> str:
    body = f"5012345{n:05d}"  # one demo company prefix; a valid check digit for each
    return body + str(gtin_check_digit(body))


def _catalogue(rng: random.Random) -> list[dict]:
    items = []
    for code, (dept, names, colours, sizes) in DEPARTMENTS.items():
        for n, base in enumerate(names, start=1):
            for colour in colours:
                for size in sizes:
                    sku = (f"{code}-{100 + n:03d}-{colour[:4].upper()}"
                           + (f"-{size[:2].upper()}" if size else ""))
                    name = f"{base} — {colour}" + (f", {size}" if size else "")
                    price = Decimal(rng.choice(PRICES)) - Decimal("0.05")
                    items.append({"sku": sku, "name": name, "price": price, "category": dept,
                                  "supplier": SUPPLIERS[(n + len(dept)) % len(SUPPLIERS)]})
    rng.shuffle(items)
    for n, item in enumerate(items[:500]):
        item["barcode"] = _ean13(n) if n % 10 else None  # a few products have no barcode
    return items[:500]


@dataclass
class _Shop:
    """What the demo's steps share: the clock, the dice, who acts, and what was made."""

    rng: random.Random
    now: datetime
    start: datetime  # two weeks before now: when the shop opened
    merch: Actor
    support: Actor
    manager: Actor
    storefront: Actor
    products: list[Product] = field(default_factory=list)
    sellable: list[Product] = field(default_factory=list)
    carts: list[Cart] = field(default_factory=list)
    # The products each store received stock of (the storefront holds some there).
    at_store: dict[str, list[Product]] = field(default_factory=dict)


STEPS = 8  # what `load` reports through `progress`


def load(now: datetime, seed: int = 7, progress=lambda step, what: None) -> str:
    """Fill an empty database with the demo shop, step by step as a fortnight of trading
    would; returns what was loaded and the storefront's API token (shown once).
    `progress(step, what)` hears each of the STEPS steps as it starts (the CLI prints them:
    on PostgreSQL the load takes half a minute)."""
    progress(1, "opening the shop: staff, catalogue, storefront client")
    shop, token = _open_shop(random.Random(seed), now)
    progress(2, "stocking the catalogue")
    selling_down = _stock_the_catalogue(shop)
    _spread_over_locations(shop, sold_down={product.id for product, _ in selling_down})
    _move_stock_between_locations(shop)
    progress(3, "selling some products down to low and out of stock")
    _sell_down(shop, selling_down)
    progress(4, "writing a fortnight of stock history")
    _keep_stock_history(shop, sold_down={product.id for product, _ in selling_down})
    shop.sellable = [p for p in shop.products if p.on_hand > 25]
    progress(5, "filling carts with holds")
    _fill_carts(shop)
    progress(6, "taking orders in every status")
    _take_orders(shop)
    progress(7, "leaving stuck holds")
    _leave_stuck_holds(shop)
    progress(8, "working alerts and holds")
    _work_alerts_and_holds(shop)
    _note_storefront_calls(shop)
    counts = {
        "products": db.session.scalar(select(func.count()).select_from(Product)),
        "open alerts": db.session.scalar(
            select(func.count()).select_from(StockAlert).where(StockAlert.status != "resolved")),
    }
    return (
        "Demo shop loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ".\n"
        f"Storefront API token for 'Demo storefront' (shown once): {token}"
    )


def _open_shop(rng: random.Random, now: datetime) -> tuple[_Shop, str]:
    """The staff (one of each role) and the storefront's API client."""
    start = now - timedelta(days=14)
    for email, role, name in STAFF:
        services.create_staff(email, role=role, password=DEMO_PASSWORD, name=name, now=start)
    staff = {role: db.session.scalars(select(StaffUser).where(StaffUser.email == email)).one()
             for email, role, _ in STAFF}
    client, token = services.create_api_client("Demo storefront", now=start)
    shop = _Shop(rng, now, start, *(Actor.staff(staff[r]) for r in
                                     ("merchandiser", "support", "manager")), Actor.api(client))
    admin = Actor.staff(staff["admin"])
    if default_location().name != "Main warehouse":
        update_location(default_location(), name="Main warehouse", actor=admin, now=start)
    for code, name, kind, sellable, priority in LOCATIONS:
        create_location(code, name, kind=kind, sellable=sellable, priority=priority,
                        actor=admin, now=start)
    return shop, token


def _spread_over_locations(shop: _Shop, sold_down: set[int]) -> None:
    """Deliveries to the other locations on the shop's first day: overflow stock at NORTH,
    a shelf's worth at each store. Only healthy products, so the low and out ones stay as
    the sell-down leaves them."""
    rng, merch = shop.rng, shop.merch
    healthy = [p for p in shop.products if p.id not in sold_down
               and p.on_hand > p.low_stock_threshold + 15]
    when = shop.start + timedelta(hours=8)
    for code, share, units in (("NORTH", 0.3, (20, 150)), ("STORE-1", 0.3, (4, 20)),
                               ("STORE-2", 0.25, (4, 20))):
        chosen = rng.sample(healthy, int(len(healthy) * share))
        for product in chosen:
            services.adjust(product.id, rng.randint(*units), reason=f"Delivery to {code}",
                            kind="receive", location=code, actor=merch, now=when)
        if code.startswith("STORE"):
            shop.at_store[code] = chosen


def _move_stock_between_locations(shop: _Shop) -> None:
    """Transfers from NORTH's overflow: one received at the High Street store, one on the
    road to the Station store (in transit), one still a draft."""
    rng, merch = shop.rng, shop.merch
    north = find_location("NORTH")
    stocked = [p for p in shop.products
               if db.session.get(StockLevel, (p.id, north.id)).on_hand >= 20]
    if len(stocked) < 9:
        return
    picked = rng.sample(stocked, 9)
    for n, (destination, step) in enumerate((("STORE-1", "received"), ("STORE-2", "shipped"),
                                             ("STORE-1", "draft"))):
        when = shop.start + timedelta(days=3 + 4 * n, hours=9)
        transfer = transfers.create_transfer(
            "NORTH", destination, [(p.id, rng.randint(3, 8)) for p in picked[3 * n:3 * n + 3]],
            note=f"Restock {destination} from the overflow", actor=merch, now=when)
        if step != "draft":
            transfers.ship(transfer.id, actor=merch, now=when + timedelta(hours=1))
        if step == "received":
            transfers.receive(transfer.id, actor=merch, now=when + timedelta(days=1))


def _stock_the_catalogue(shop: _Shop) -> list[tuple[Product, int]]:
    """About 500 products at a spread of levels; returns those to sell down, and how far."""
    rng, selling_down = shop.rng, []
    catalogue = _catalogue(rng)
    for i, item in enumerate(catalogue):
        roll = rng.random()
        threshold = rng.choice([5, 8, 10, 12, 15, 20])
        # A spread: mostly healthy, some low, some out, a few huge sellers.
        on_hand = (
            0 if roll < 0.05 else rng.randint(1, threshold) if roll < 0.15
            else rng.randint(threshold + 15, 400) if roll < 0.97 else rng.randint(1000, 5000)
        )
        # Low and out products arrive healthy and sell down over the fortnight, so their
        # alerts open at different times, through the same holds and commits a shop makes.
        to_sell = threshold + rng.randint(3, 20) if on_hand <= threshold else 0
        product = services.create_product(
            item["sku"], item["name"], actor=shop.merch, now=shop.start + timedelta(minutes=i),
            price=item["price"], on_hand=on_hand + to_sell, low_stock_threshold=threshold,
        )
        shop.products.append(product)
        if to_sell:
            selling_down.append((product, to_sell))
    upsert_products([{k: item[k] for k in ("sku", "barcode", "category", "supplier")}
                     for item in catalogue], actor=shop.merch,
                    now=shop.start + timedelta(minutes=len(catalogue)))
    return selling_down


def _sell_down(shop: _Shop, selling_down: list[tuple[Product, int]]) -> None:
    rng, now = shop.rng, shop.now
    for product, to_sell in selling_down:
        sold_at = shop.start + timedelta(hours=rng.randint(6, 24))
        while to_sell:
            quantity = min(to_sell, rng.randint(1, 6))
            sold_at += timedelta(hours=rng.randint(4, 60))
            if sold_at > now - timedelta(hours=1):
                sold_at = now - timedelta(minutes=rng.randint(61, 120))
            hold = services.reserve(product.id, quantity,
                                    Owner(customer_id=rng.randint(1000, 4999)),
                                    ttl_seconds=15 * 60, actor=shop.storefront, now=sold_at)
            services.commit(hold.id, actor=shop.storefront, now=sold_at + timedelta(minutes=3))
            to_sell -= quantity


def _keep_stock_history(shop: _Shop, sold_down: set[int]) -> None:
    """Two weeks of history on a slice of the catalogue: deliveries, damage, counts."""
    rng, now, merch = shop.rng, shop.now, shop.merch
    for product in rng.sample([p for p in shop.products if p.id not in sold_down], 60):
        when = shop.start + timedelta(hours=12)
        for _ in range(rng.randint(3, 7)):
            when += timedelta(hours=rng.randint(12, 40))
            if when > now - timedelta(hours=2):
                break
            # What MAIN (the default location, where these happen) has now.
            current = db.session.scalars(
                select(StockLevel).where(StockLevel.product_id == product.id,
                                         StockLevel.location_id == default_location().id)
                .execution_options(populate_existing=True)).one()
            choice = rng.random()
            try:
                if choice < 0.4:
                    services.adjust(product.id, rng.randint(10, 60), actor=merch, now=when,
                                    reason="Delivery from supplier", kind="receive")
                elif choice < 0.7 and current.available > 3:
                    services.adjust(product.id, -rng.randint(1, 3), reason="Damaged in warehouse",
                                    actor=merch, now=when)
                else:
                    seen = current.on_hand
                    counted = max(current.reserved, seen + rng.randint(-4, 2))
                    services.count(product.id, counted, seen, actor=merch, now=when,
                                   note="Cycle count")
            except StockroomError:
                pass


def _fill_carts(shop: _Shop) -> None:
    """Carts with holds expiring over the next 30 minutes, made by the storefront."""
    rng, now = shop.rng, shop.now
    with transaction():
        for c in range(40):
            cart = Cart(session_key=f"sess-{rng.getrandbits(64):016x}",
                        customer_id=rng.choice([None, 5000 + c]),
                        api_client_id=shop.storefront.id, created_at=now, updated_at=now)
            db.session.add(cart)
            db.session.flush()
            for product in rng.sample(shop.sellable, rng.randint(1, 3)):
                db.session.add(CartItem(cart_id=cart.id, product_id=product.id,
                                        quantity=rng.randint(1, 3), added_at=now))
            shop.carts.append(cart)
    for cart in shop.carts[:30]:
        made = now - timedelta(minutes=rng.randint(0, 14))
        services.reserve_cart(cart.id, ttl_seconds=15 * 60 + rng.randint(0, 15 * 60),
                              actor=shop.storefront, now=made)
    for _ in range(25):
        product = rng.choice(shop.sellable)
        services.reserve(product.id, rng.randint(1, 2),
                         Owner(session_key=f"sess-{rng.getrandbits(64):016x}"),
                         ttl_seconds=rng.randint(2, 30) * 60, actor=shop.storefront,
                         now=now - timedelta(seconds=rng.randint(0, 60)))
    # Click and collect: the storefront names the store (at most 2 units of a product each,
    # and each store has at least 4 of the products it received).
    for code, products in shop.at_store.items():
        for product in rng.sample(products, min(8, len(products))):
            services.reserve(product.id, rng.randint(1, 2),
                             Owner(session_key=f"collect-{rng.getrandbits(48):012x}"),
                             ttl_seconds=rng.randint(10, 30) * 60, location=code,
                             actor=shop.storefront, now=now - timedelta(seconds=rng.randint(0, 60)))


def _pending_order(customer_id: int, product: Product, quantity: int, created_at: datetime,
                   now: datetime, storefront: Actor) -> Order:
    """An order as the storefront writes it (Stockroom only reads orders and holds for them),
    naming itself as the order's storefront."""
    with transaction():
        order = Order(customer_id=customer_id, status="pending", total=product.price * quantity,
                      api_client_id=storefront.id, created_at=created_at, updated_at=now)
        db.session.add(order)
        db.session.flush()
        db.session.add(OrderItem(order_id=order.id, product_id=product.id, quantity=quantity,
                                 price=product.price))
    return order


def _set_order_status(order_id: int, status: str) -> None:
    """A status change the storefront made without telling Stockroom (shipped, cancelled)."""
    with transaction():
        db.session.execute(update(Order).where(Order.id == order_id).values(status=status))


def _take_orders(shop: _Shop) -> None:
    """Orders in every status, each held first."""
    rng, now = shop.rng, shop.now
    for n in range(36):
        product = rng.choice(shop.sellable)
        qty = rng.randint(1, 2)
        order = _pending_order(7000 + n, product, qty,
                               now - timedelta(minutes=rng.randint(1, 50)), now, shop.storefront)
        services.reserve(product.id, qty, Owner(order_id=order.id, customer_id=7000 + n),
                         ttl_seconds=30 * 60, actor=shop.storefront, now=order.created_at)
        kind = n % 4
        if kind in (1, 2):
            services.confirm_order(order.id, actor=shop.storefront, now=now - timedelta(minutes=1))
        if kind == 2:
            _set_order_status(order.id, "shipped")
        elif kind == 3:
            services.cancel_order(order.id, actor=shop.storefront, now=now - timedelta(seconds=30),
                                  reason="customer changed their mind")


def _leave_stuck_holds(shop: _Shop) -> None:
    """Stuck holds, one of each kind the holds console explains."""
    rng, now, storefront = shop.rng, shop.now, shop.storefront
    stuck = rng.sample(shop.sellable, 8)
    for product in stuck[:3]:  # overdue but not yet swept
        services.reserve(product.id, 1, Owner(session_key="abandoned-checkout"), ttl_seconds=300,
                         actor=storefront, now=now - timedelta(minutes=rng.randint(8, 25)))
    for product in stuck[3:5]:  # held for an order the storefront cancelled without releasing
        order = _pending_order(8100, product, 1, now - timedelta(minutes=20), now, storefront)
        services.reserve(product.id, 1, Owner(order_id=order.id), ttl_seconds=45 * 60,
                         actor=storefront, now=now - timedelta(minutes=20))
        _set_order_status(order.id, "cancelled")
    for cart in shop.carts[:2]:  # cart no longer holds the product
        first = cart.items[0]
        with transaction():
            db.session.execute(delete(CartItem).where(CartItem.id == first.id))
    for product in stuck[5:8]:  # far older than the normal time to live (within the cap)
        services.reserve(product.id, 1, Owner(customer_id=9001), ttl_seconds=2 * 60 * 60,
                         actor=storefront, now=now - timedelta(minutes=rng.randint(65, 110)))


def _note_storefront_calls(shop: _Shop) -> None:
    """The demo's holds were made through the services, not the API: note the storefront's
    last call as its last hold, as its own calls would have (the admin page shows it)."""
    last = db.session.scalar(select(func.max(StockMovement.created_at))
                             .where(StockMovement.actor_api_client_id == shop.storefront.id))
    if last is not None:
        services.record_api_client_use(db.session.get(ApiClient, shop.storefront.id), last)


def _work_alerts_and_holds(shop: _Shop) -> None:
    """Every service call evaluated its product's alerts; a manager acknowledges and resolves
    a few, and support releases two holds for a customer who called."""
    now = shop.now
    open_alerts = db.session.scalars(
        select(StockAlert).where(StockAlert.status == "open").order_by(StockAlert.id)
    ).all()
    for alert in open_alerts[:3]:
        services.acknowledge(alert.id, actor=shop.manager, now=now - timedelta(minutes=30))
    if len(open_alerts) > 4:
        services.resolve(open_alerts[4].id, actor=shop.manager, now=now - timedelta(minutes=10),
                         note="Discontinued colour; no reorder")
    released = db.session.scalars(
        select(Reservation.id).where(
            Reservation.status == "active", Reservation.session_key.is_not(None),
            Reservation.cart_id.is_(None), Reservation.expires_at > now,
        ).limit(2)
    ).all()
    if released:
        services.release_many(released, actor=shop.support, now=now,
                              reason="Customer called: payment failed, freeing stock")
