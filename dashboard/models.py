"""Database tables as typed SQLAlchemy 2 mappings.

Columns, constraints and small pure properties only. Nothing here changes stock:
every change goes through `dashboard.services` (SPEC §3), never through model hooks.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, make_transient_to_detached, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value

from .extensions import db


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC on every backend (SQLite stores naive text, so re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


# 64-bit keys for the tables that grow without bound; SQLite only autoincrements INTEGER.
BigId = BigInteger().with_variant(Integer, "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


HOLD_STATUSES = ("active", "released", "expired", "committed")
ORDER_STATUSES = ("pending", "confirmed", "shipped", "cancelled")
MOVEMENT_KINDS = (
    "receive", "adjust", "count", "reserve", "release", "expire", "commit", "import", "repair",
    # A transfer's units leaving its source, arriving at its destination, and the part that
    # never arrived, written off at the destination (no on-hand moves: it left at shipping).
    "transfer_out", "transfer_in", "write_off",
)
LOCATION_KINDS = ("warehouse", "store")
TRANSFER_STATUSES = ("draft", "shipped", "received", "cancelled")
ALERT_KINDS = ("LOW_STOCK", "OUT_OF_STOCK")
ALERT_STATUSES = ("open", "acknowledged", "resolved")
ROLES = ("viewer", "merchandiser", "support", "manager", "admin")
JOB_NAMES = ("expire", "alerts", "reconcile")
JOB_STATUSES = ("running", "ok", "failed", "skipped")


def actor_label(staff_name: str | None, api_client_name: str | None) -> str:
    """How the dashboard names who did something: a staff member's name (emails appear on
    the admin pages only), an API client, or the system."""
    if staff_name is not None:
        return staff_name
    if api_client_name is not None:
        return f"API client {api_client_name}"
    return "the system"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Product(db.Model):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        CheckConstraint("low_stock_threshold >= 0", name="threshold_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("length(sku) > 0", name="sku_not_empty"),
        Index("ix_products_name_id", "name", "id"),
        # SKUs typed in any case (holds, activity and count-import filters).
        Index("ix_products_sku_lower", text("lower(sku)")),
        Index("ix_products_available_id", text("(on_hand - reserved)"), "id"),
        # Keyset pages of the stock list sorted by these columns (SPEC §6).
        Index("ix_products_on_hand_id", "on_hand", "id"),
        Index("ix_products_reserved_id", "reserved", "id"),
        Index("ix_products_threshold_id", "low_stock_threshold", "id"),
        # The few products at or below their threshold (low or out): overview counts and filters.
        Index(
            "ix_products_alerting", "id",
            postgresql_where=text("is_active AND on_hand - reserved <= low_stock_threshold"),
            sqlite_where=text("is_active AND on_hand - reserved <= low_stock_threshold"),
            # Low vs out from the index alone on PostgreSQL (migration 0007).
            postgresql_include=["on_hand", "reserved"],
        ),
        # What each stock level's copy of the threshold and is_active refers to (migration
        # 0010): a foreign key needs a unique key over exactly its columns.
        Index("uq_products_id_threshold_active", "id", "low_stock_threshold", "is_active",
              unique=True),
        Index(
            "ix_products_inactive", "id",
            postgresql_where=text("NOT is_active"), sqlite_where=text("NOT is_active"),
        ),
        # A barcode names one product; most products may have none (NULLs never clash).
        Index(
            "uq_products_barcode", "barcode", unique=True,
            postgresql_where=text("barcode IS NOT NULL"), sqlite_where=text("barcode IS NOT NULL"),
        ),
        # The storefront's catalogue sync pages by (updated_at, id) (GET /api/v1/products).
        Index("ix_products_updated_at_id", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    low_stock_threshold: Mapped[int] = mapped_column(Integer, default=10)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # GTIN-8/12/13/14 digits with a valid check digit (services.catalogue); None = no barcode.
    barcode: Mapped[str | None] = mapped_column(String(14))
    # The shop's department, free-form; filters the stock list.
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    supplier: Mapped[str | None] = mapped_column(String(200))
    # Set when a manager resolves an alert while the product is still low; cleared by
    # alert evaluation once the product recovers above its threshold (SPEC §4).
    alert_muted: Mapped[bool] = mapped_column(Boolean, default=False)
    last_stock_check: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def available(self) -> int:
        # Never clamped: a negative number here would be a bug worth seeing (seed 000).
        return self.on_hand - self.reserved

    def __repr__(self) -> str:
        return f"<Product {self.sku} on_hand={self.on_hand} reserved={self.reserved}>"


class Location(db.Model):
    """A place that keeps stock: a warehouse or a store. Exactly one is the default, which
    takes counts, adjustments and imports that name no location."""

    __tablename__ = "locations"
    __table_args__ = (
        CheckConstraint(_in("kind", LOCATION_KINDS), name="kind_known"),
        CheckConstraint("length(code) > 0", name="code_not_empty"),
        CheckConstraint("code = upper(code)", name="code_uppercase"),
        CheckConstraint("priority >= 0", name="priority_not_negative"),
        Index("uq_locations_default", "is_default", unique=True,
              postgresql_where=text("is_default"), sqlite_where=text("is_default")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # What the storefront and CSV files name it by: MAIN, STORE-1, ...
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10), default="warehouse")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The storefront may hold stock here (a back office may not sell from its shelves).
    sellable: Mapped[bool] = mapped_column(Boolean, default=True)
    # Allocation order for holds that name no location: lowest first.
    priority: Mapped[int] = mapped_column(Integer, default=100)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Location {self.code}>"


LEVEL_ALERTING = "product_is_active AND on_hand - reserved <= product_threshold"


class StockLevel(db.Model):
    """A product's stock at one location. `products.on_hand` and `products.reserved` are the
    sums over its levels, kept in the same statement as every change (ledger.apply_deltas).

    `product_threshold` and `product_is_active` are the product's, copied so one location's
    low and out levels can be a partial index (ix_stock_levels_alerting). The database keeps
    them: the foreign key names all three product columns and cascades their updates, so
    code never writes them except when inserting a level (from the product's row)."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        # One location's stock list, sorted or filtered by its own figures.
        Index("ix_stock_levels_location_id_product_id", "location_id", "product_id"),
        ForeignKeyConstraint(
            ["product_id", "product_threshold", "product_is_active"],
            ["products.id", "products.low_stock_threshold", "products.is_active"],
            name="fk_stock_levels_product_id_products", ondelete="CASCADE", onupdate="CASCADE"),
        # One location's low and out levels (its tab counts), as stock.alerting() says.
        Index(
            "ix_stock_levels_alerting", "location_id", "product_id",
            postgresql_where=text(LEVEL_ALERTING), sqlite_where=text(LEVEL_ALERTING),
            postgresql_include=["on_hand", "reserved"],  # low vs out from the index alone
        ),
    )

    product_id: Mapped[int] = mapped_column(primary_key=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    product_threshold: Mapped[int] = mapped_column(Integer)
    product_is_active: Mapped[bool] = mapped_column(Boolean)
    last_stock_check: Mapped[datetime | None] = mapped_column(UTCDateTime)

    location: Mapped[Location] = relationship()

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class Cart(db.Model):
    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_key: Mapped[str | None] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # The storefront whose record this is (SPEC §7): only it, or a client granted every
    # storefront, reaches it through the API. Null: no storefront's (staff or imports).
    api_client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[CartItem]] = relationship(
        back_populates="cart", order_by="CartItem.product_id"
    )


class CartItem(db.Model):
    __tablename__ = "cart_items"
    __table_args__ = (
        UniqueConstraint("cart_id", "product_id", name="uq_cart_items_cart_product"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    cart: Mapped[Cart] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(_in("status", ORDER_STATUSES), name="status_known"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        # Orders a hold should no longer be tied to (a stuck reason): an index-only probe
        # per active hold on an order for the overview's stuck count (migration 0007).
        Index(
            "ix_orders_ended", "id",
            postgresql_where=text("status IN ('confirmed', 'shipped', 'cancelled')"),
            sqlite_where=text("status IN ('confirmed', 'shipped', 'cancelled')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # The storefront whose order this is; see Cart.api_client_id.
    api_client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    total: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.product_id"
    )


class OrderItem(db.Model):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    # Line price snapshot at the time of the order.
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))

    order: Mapped[Order] = relationship(back_populates="items")
    product: Mapped[Product] = relationship()


class StaffUser(UserMixin, db.Model):
    __tablename__ = "staff_users"
    __table_args__ = (
        CheckConstraint(_in("role", ROLES), name="role_known"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_ip: Mapped[str | None] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # The signed-in device's session id (not a column): set by the session loader and at
    # sign-in, so Flask-Login stores that id, never the account's.
    session_token = None

    def get_id(self) -> str | None:
        return self.session_token

    def __repr__(self) -> str:
        return f"<StaffUser {self.email} {self.role}>"


class StaffSession(db.Model):
    """One signed-in device: the session cookie carries only its random id (kept here as a
    sha256), so signing out, or an admin ending it, stops a copied cookie too."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    user_agent: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(45))


class ApiClient(db.Model):
    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # sha256 of the token: tokens are 256 random bits, so a fast hash is enough and
    # keeps every API call from paying for a password hash.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(12))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Granted by an admin to a shop's one integration: it may act on every storefront's
    # carts, orders and holds, not only its own.
    all_storefronts: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Reservation(db.Model):
    """A hold: units of one product kept aside for a storefront owner until it ends."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(_in("status", HOLD_STATUSES), name="status_known"),
        CheckConstraint(
            "session_key IS NOT NULL OR customer_id IS NOT NULL"
            " OR cart_id IS NOT NULL OR order_id IS NOT NULL",
            name="has_owner",
        ),
        CheckConstraint(
            "(status = 'active' AND ended_at IS NULL AND end_reason IS NULL)"
            " OR (status <> 'active' AND ended_at IS NOT NULL AND end_reason IS NOT NULL)",
            name="ended_iff_not_active",
        ),
        CheckConstraint(
            "ended_by_staff_id IS NULL OR ended_by_api_client_id IS NULL", name="one_ender"
        ),
        # Covering on PostgreSQL: the overview counts and sums active holds from the index
        # alone (an index-only scan), not by visiting each hold's row (migration 0007).
        Index(
            "ix_reservations_active_expires_at", "expires_at", "id",
            postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'"),
            postgresql_include=["quantity", "created_at", "order_id", "cart_id", "product_id"],
        ),
        Index(
            "ix_reservations_active_product_id", "product_id", "expires_at",
            postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    # Where the units are held (I2 holds per location: the level's reserved is its holds).
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    session_key: Mapped[str | None] = mapped_column(String(40), index=True)
    customer_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    cart_id: Mapped[int | None] = mapped_column(ForeignKey("carts.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    ended_by_api_client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"))
    end_reason: Mapped[str | None] = mapped_column(Text)
    # The storefront that made the hold (null: staff or the demo): only it, or a client
    # granted every storefront, sees or ends the hold through the API.
    created_by_api_client_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_clients.id"), index=True
    )

    product: Mapped[Product] = relationship()
    location: Mapped[Location] = relationship()
    cart: Mapped[Cart | None] = relationship()
    order: Mapped[Order | None] = relationship()
    ended_by_staff: Mapped[StaffUser | None] = relationship(foreign_keys=[ended_by_staff_id])
    ended_by_api_client: Mapped[ApiClient | None] = relationship(
        foreign_keys=[ended_by_api_client_id]
    )
    created_by_api_client: Mapped[ApiClient | None] = relationship(
        foreign_keys=[created_by_api_client_id]
    )


class StockMovement(db.Model):
    """The append-only stock ledger: one row per change of on_hand or reserved."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint(_in("kind", MOVEMENT_KINDS), name="kind_known"),
        CheckConstraint("on_hand_after >= 0 AND reserved_after >= 0", name="after_not_negative"),
        CheckConstraint(
            "actor_staff_id IS NULL OR actor_api_client_id IS NULL", name="one_actor"
        ),
        Index("ix_stock_movements_product_id_id", "product_id", "id"),
        Index("ix_stock_movements_location_id_id", "location_id", "id"),
        Index("ix_stock_movements_created_at", "created_at"),
        # Activity filtered by kind, newest first: a rare kind (repair, import) would
        # otherwise walk the whole ledger.
        Index("ix_stock_movements_kind_id", "kind", "id"),
        Index("ix_stock_movements_actor_staff_id", "actor_staff_id"),
        Index("ix_stock_movements_actor_api_client_id", "actor_api_client_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    # The level that moved (I3 per location); `*_after` are the product's totals.
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    kind: Mapped[str] = mapped_column(String(20))
    on_hand_delta: Mapped[int] = mapped_column(Integer, default=0)
    reserved_delta: Mapped[int] = mapped_column(Integer, default=0)
    on_hand_after: Mapped[int] = mapped_column(Integer)
    reserved_after: Mapped[int] = mapped_column(Integer)
    # Both null: the system (scheduler, lazy expiry).
    actor_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    actor_api_client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id"))
    reservation_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("reservations.id"), index=True
    )
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    transfer_id: Mapped[int | None] = mapped_column(ForeignKey("transfers.id"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    product: Mapped[Product] = relationship()
    location: Mapped[Location] = relationship()
    actor_staff: Mapped[StaffUser | None] = relationship()
    actor_api_client: Mapped[ApiClient | None] = relationship()

    @property
    def available_after(self) -> int:
        return self.on_hand_after - self.reserved_after

    @property
    def actor_name(self) -> str:
        return actor_label(
            self.actor_staff.name if self.actor_staff else None,
            self.actor_api_client.name if self.actor_api_client else None,
        )


class Transfer(db.Model):
    """Stock moving between two locations: a draft is planned, shipping takes the units off
    the source's on-hand (then they are in transit), receipts add them to the destination
    (one or several), and what never arrives is written off with a reason."""

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint(_in("status", TRANSFER_STATUSES), name="status_known"),
        CheckConstraint("source_id <> destination_id", name="two_places"),
        Index("ix_transfers_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    destination_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="draft")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the last unit is received or written off, or when a draft is cancelled.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    source: Mapped[Location] = relationship(foreign_keys=[source_id])
    destination: Mapped[Location] = relationship(foreign_keys=[destination_id])
    created_by: Mapped[StaffUser | None] = relationship()
    lines: Mapped[list[TransferLine]] = relationship(
        back_populates="transfer", order_by="TransferLine.product_id")

    @property
    def code(self) -> str:
        return f"T-{self.id:05d}"


class TransferLine(db.Model):
    __tablename__ = "transfer_lines"
    __table_args__ = (
        UniqueConstraint("transfer_id", "product_id", name="uq_transfer_lines_transfer_product"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("received >= 0 AND written_off >= 0", name="settled_not_negative"),
        CheckConstraint("received + written_off <= quantity", name="settled_within_quantity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("transfers.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    received: Mapped[int] = mapped_column(Integer, default=0)
    written_off: Mapped[int] = mapped_column(Integer, default=0)

    transfer: Mapped[Transfer] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()

    @property
    def in_transit(self) -> int:
        """Units on their way: shipped, neither received nor written off (0 for a draft)."""
        if self.transfer.status != "shipped":
            return 0
        return self.quantity - self.received - self.written_off


class StockAlert(db.Model):
    __tablename__ = "stock_alerts"
    __table_args__ = (
        CheckConstraint(_in("kind", ALERT_KINDS), name="kind_known"),
        CheckConstraint(_in("status", ALERT_STATUSES), name="status_known"),
        CheckConstraint(
            "(status = 'resolved') = (resolved_at IS NOT NULL)", name="resolved_iff_resolved_at"
        ),
        # I4: at most one unresolved alert per product.
        Index(
            "uq_stock_alerts_one_unresolved", "product_id", unique=True,
            postgresql_where=text("status <> 'resolved'"),
            sqlite_where=text("status <> 'resolved'"),
        ),
        Index("ix_stock_alerts_status_opened_at_id", "status", "opened_at", "id"),
        # The open and acknowledged tabs by severity (queries.alerts): an index range.
        Index("ix_stock_alerts_status_kind_opened_at_id", "status", "kind", "opened_at", "id"),
        Index("ix_stock_alerts_product_id", "product_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), default="open")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_available: Mapped[int] = mapped_column(Integer)
    # When the kind last changed (escalation LOW -> OUT or back).
    kind_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Null with resolved_at set: resolved automatically by the system.
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    resolution_note: Mapped[str | None] = mapped_column(Text)

    product: Mapped[Product] = relationship()
    acknowledged_by: Mapped[StaffUser | None] = relationship(foreign_keys=[acknowledged_by_id])
    resolved_by: Mapped[StaffUser | None] = relationship(foreign_keys=[resolved_by_id])


class JobRun(db.Model):
    """One scheduled or manual run of a job; (job, slot_at) is claimed once across hosts."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint(_in("job", JOB_NAMES), name="job_known"),
        CheckConstraint(_in("status", JOB_STATUSES), name="status_known"),
        UniqueConstraint("job", "slot_at", name="uq_job_runs_job_slot"),
        Index("ix_job_runs_job_started_at", "job", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(20))
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="running")
    rows_affected: Mapped[int] = mapped_column(Integer, default=0)
    # JSON text: what the run did (holds expired, units returned, alerts opened, drift...).
    detail: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(100))
    triggered_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))


class SchedulerHeartbeat(db.Model):
    __tablename__ = "scheduler_heartbeats"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    host: Mapped[str | None] = mapped_column(String(100))
    pid: Mapped[int | None] = mapped_column(Integer)


class IdempotencyKey(db.Model):
    """A storefront POST remembered by its Idempotency-Key, so a retry gets the same answer."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("api_client_id", "key", name="uq_idempotency_keys_client_key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    api_client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    # Set in the same transaction that inserts the row: a committed row always has its answer.
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Submission(db.Model):
    """A staff form submit that took effect, by its one-time token, so a replay (a double
    click, a retry, a second tab) answers with what the first did and applies nothing."""

    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The answer, set in the transaction that inserts the row (so never null once committed).
    status_code: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str | None] = mapped_column(String(10))
    location: Mapped[str | None] = mapped_column(String(2000))  # where a plain post went


class LoginAttempt(db.Model):
    """Failed sign-ins, shared by every web worker, to throttle guessing."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "attempted_at"),
        Index("ix_login_attempts_ip_at", "ip", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(45))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Notifications (issue 16): what happened (events, the transactional outbox), who wants to
# hear it (subscriptions, webhook endpoints), and each send to one of them (deliveries).
EVENT_KINDS = (
    "alert_opened", "alert_escalated", "alert_resolved", "out_of_stock", "back_in_stock",
    "stock_updated", "test",
)
# What a webhook endpoint may subscribe to ("test" is sent by the admin's button only).
WEBHOOK_EVENTS = EVENT_KINDS[:-1]
SUBSCRIPTION_MODES = ("off", "immediate", "digest")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class NotificationEvent(db.Model):
    """Something people or storefronts are told about, written in the same transaction as
    the change that caused it (a change that rolls back leaves none)."""

    __tablename__ = "notification_events"
    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind_known"),
        CheckConstraint("kind = 'test' OR product_id IS NOT NULL", name="has_product"),
        # The scheduler's fan-out reads only the events not yet turned into deliveries.
        Index("ix_notification_events_waiting", "id",
              postgresql_where=text("NOT fanned_out"), sqlite_where=text("NOT fanned_out")),
        Index("ix_notification_events_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("stock_alerts.id"))
    # The alert's level (LOW_STOCK, OUT_OF_STOCK) and the product's available at the time.
    level: Mapped[str | None] = mapped_column(String(12))
    available: Mapped[int | None] = mapped_column(Integer)
    # Who resolved the alert (null: automatically) or pressed "send test".
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # A test event goes to this endpoint only.
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)


class WebhookEndpoint(db.Model):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (CheckConstraint("length(secret) >= 16", name="secret_long_enough"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Space-separated event kinds (WEBHOOK_EVENTS) this endpoint receives.
    events: Mapped[str] = mapped_column(Text)
    # Kept as given: every delivery is signed with it (HMAC), so it cannot be hashed.
    secret: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))

    @property
    def event_kinds(self) -> list[str]:
        return self.events.split()


class NotificationSubscription(db.Model):
    """A staff member's choice; without a row, managers get a digest of everything and
    everyone else nothing (services.subscriptions.effective)."""

    __tablename__ = "notification_subscriptions"
    __table_args__ = (CheckConstraint(_in("mode", SUBSCRIPTION_MODES), name="mode_known"),)

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(10))
    # JSON list of categories; null: every product, with or without a category.
    categories: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotificationDelivery(db.Model):
    """One event (or one day's digest) to one recipient: a webhook endpoint or a staff
    member's mailbox; sent by the scheduler, retried with backoff, then failed."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status_known"),
        CheckConstraint("(endpoint_id IS NULL) <> (staff_id IS NULL)", name="one_recipient"),
        CheckConstraint("(event_id IS NULL) <> (digest_day IS NULL)", name="event_or_digest"),
        CheckConstraint("digest_day IS NULL OR staff_id IS NOT NULL", name="digest_by_mail"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # Each event reaches each recipient once; each member gets one digest a day.
        Index("uq_notification_deliveries_event_endpoint", "event_id", "endpoint_id",
              unique=True, postgresql_where=text("endpoint_id IS NOT NULL"),
              sqlite_where=text("endpoint_id IS NOT NULL")),
        Index("uq_notification_deliveries_event_staff", "event_id", "staff_id",
              unique=True, postgresql_where=text("staff_id IS NOT NULL AND event_id IS NOT NULL"),
              sqlite_where=text("staff_id IS NOT NULL AND event_id IS NOT NULL")),
        Index("uq_notification_deliveries_digest", "staff_id", "digest_day",
              unique=True, postgresql_where=text("digest_day IS NOT NULL"),
              sqlite_where=text("digest_day IS NOT NULL")),
        # What the scheduler claims next: the few pending ones, soonest first.
        Index("ix_notification_deliveries_due", "next_attempt_at", "id",
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
        Index("ix_notification_deliveries_endpoint_id", "endpoint_id", "id"),
        Index("ix_notification_deliveries_staff_id", "staff_id", "id"),
        # A recipient's queue of pending deliveries: claims take its head only.
        Index("ix_notification_deliveries_pending_endpoint", "endpoint_id", "id",
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
        Index("ix_notification_deliveries_pending_staff", "staff_id", "id",
              postgresql_where=text("status = 'pending'"),
              sqlite_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("notification_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="CASCADE"))
    # The local day a digest covers (DISPLAY_TIMEZONE), and what it says (JSON), fixed
    # when it is made so a retry sends the same mail.
    digest_day: Mapped[str | None] = mapped_column(String(10))
    digest: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Pending: not before this (a claimed one is leased until it, so no one else takes it).
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The receiver's HTTP status or the SMTP reply code of the last attempt.
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def as_loaded(model, values: dict):
    """The session's object for this row with these column values, as if just loaded, and no
    read: what `session.merge(model(**values), load=False)` gives, without its cost.

    The one-statement calls (services.holds_pg) know their rows exactly (what they sent and
    what came back), and building the objects the ORM's way (one attribute event per column,
    merge copying each property) cost more client CPU than the statement's round trip
    (bench/reserve.py). So: the object the session already has, brought up to date, or a
    new one filled the way the ORM's loader fills one (straight into its dict), then made
    persistent. Columns not given stay unloaded (loaded on first use, as after an expiry)."""
    session, mapper = db.session(), model.__mapper__
    found = session.identity_map.get(
        mapper.identity_key_from_primary_key((values[mapper.primary_key[0].key],)))
    if found is not None:
        for name, value in values.items():
            set_committed_value(found, name, value)
        return found
    row = mapper.class_manager.new_instance()
    row.__dict__.update(values)
    make_transient_to_detached(row)
    session.add(row)
    return row
