"""Locations: stock per (product, location), holds and ledger lines at one location, and
transfers between locations.

Today's single-location data moves into the default location MAIN without changing a
figure: each product's on_hand, reserved and last count become its MAIN level, every hold
and every ledger line is at MAIN, and the product columns stay as the totals.

On PostgreSQL the new NOT NULL columns are added with MAIN's id as a constant default
(a catalogue change, no rewrite of a million holds), which is then dropped. SQLite cannot
add a foreign key to an existing table, so there the two columns are plain integers
(stock_movements is rebuilt anyway, for its new kinds, and gets its foreign key).

Revision ID: 0009_locations
Revises: 0008_notifications
Create Date: 2026-12-02 11:00:00

"""
import warnings
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0009_locations'
down_revision = '0008_notifications'
branch_labels = None
depends_on = None

OLD_KINDS = ('receive', 'adjust', 'count', 'reserve', 'release', 'expire', 'commit', 'import',
             'repair')
NEW_KINDS = OLD_KINDS + ('transfer_out', 'transfer_in', 'write_off')


def _kinds(kinds):
    return f"kind IN ({', '.join(repr(k) for k in kinds)})"


def upgrade():
    op.create_table(
        'locations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=20), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('sellable', sa.Boolean(), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('warehouse', 'store')", name=op.f('ck_locations_kind_known')),
        sa.CheckConstraint('length(code) > 0', name=op.f('ck_locations_code_not_empty')),
        sa.CheckConstraint('code = upper(code)', name=op.f('ck_locations_code_uppercase')),
        sa.CheckConstraint('priority >= 0', name=op.f('ck_locations_priority_not_negative')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_locations')),
        sa.UniqueConstraint('code', name=op.f('uq_locations_code')),
    )
    op.create_index('uq_locations_default', 'locations', ['is_default'], unique=True,
                    postgresql_where=sa.text('is_default'), sqlite_where=sa.text('is_default'))
    main_id = op.get_bind().execute(sa.text(
        "INSERT INTO locations (code, name, kind, is_active, sellable, priority, is_default,"
        " created_at) VALUES ('MAIN', 'Main warehouse', 'warehouse', true, true, 0, true,"
        " CURRENT_TIMESTAMP) RETURNING id")).scalar_one()

    op.create_table(
        'stock_levels',
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('location_id', sa.Integer(), nullable=False),
        sa.Column('on_hand', sa.Integer(), nullable=False),
        sa.Column('reserved', sa.Integer(), nullable=False),
        sa.Column('last_stock_check', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint('on_hand >= 0', name=op.f('ck_stock_levels_on_hand_not_negative')),
        sa.CheckConstraint('reserved >= 0', name=op.f('ck_stock_levels_reserved_not_negative')),
        sa.CheckConstraint('reserved <= on_hand',
                           name=op.f('ck_stock_levels_reserved_within_on_hand')),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'], ondelete='CASCADE',
                                name=op.f('fk_stock_levels_product_id_products')),
        sa.ForeignKeyConstraint(['location_id'], ['locations.id'],
                                name=op.f('fk_stock_levels_location_id_locations')),
        sa.PrimaryKeyConstraint('product_id', 'location_id', name=op.f('pk_stock_levels')),
    )
    op.create_index('ix_stock_levels_location_id_product_id', 'stock_levels',
                    ['location_id', 'product_id'])
    op.execute(sa.text(
        "INSERT INTO stock_levels (product_id, location_id, on_hand, reserved, last_stock_check)"
        " SELECT id, :main, on_hand, reserved, last_stock_check FROM products"
    ).bindparams(main=main_id))

    op.create_table(
        'transfers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('destination_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by_staff_id', sa.Integer(), nullable=True),
        sa.Column('shipped_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'shipped', 'received', 'cancelled')",
                           name=op.f('ck_transfers_status_known')),
        sa.CheckConstraint('source_id <> destination_id', name=op.f('ck_transfers_two_places')),
        sa.ForeignKeyConstraint(['source_id'], ['locations.id'],
                                name=op.f('fk_transfers_source_id_locations')),
        sa.ForeignKeyConstraint(['destination_id'], ['locations.id'],
                                name=op.f('fk_transfers_destination_id_locations')),
        sa.ForeignKeyConstraint(['created_by_staff_id'], ['staff_users.id'],
                                name=op.f('fk_transfers_created_by_staff_id_staff_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_transfers')),
    )
    op.create_index('ix_transfers_status_id', 'transfers', ['status', 'id'])
    op.create_index('ix_transfers_source_id', 'transfers', ['source_id'])
    op.create_index('ix_transfers_destination_id', 'transfers', ['destination_id'])
    op.create_table(
        'transfer_lines',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('transfer_id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('quantity', sa.Integer(), nullable=False),
        sa.Column('received', sa.Integer(), nullable=False),
        sa.Column('written_off', sa.Integer(), nullable=False),
        sa.CheckConstraint('quantity > 0', name=op.f('ck_transfer_lines_quantity_positive')),
        sa.CheckConstraint('received >= 0 AND written_off >= 0',
                           name=op.f('ck_transfer_lines_settled_not_negative')),
        sa.CheckConstraint('received + written_off <= quantity',
                           name=op.f('ck_transfer_lines_settled_within_quantity')),
        sa.ForeignKeyConstraint(['transfer_id'], ['transfers.id'], ondelete='CASCADE',
                                name=op.f('fk_transfer_lines_transfer_id_transfers')),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'],
                                name=op.f('fk_transfer_lines_product_id_products')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_transfer_lines')),
        sa.UniqueConstraint('transfer_id', 'product_id', name='uq_transfer_lines_transfer_product'),
    )
    op.create_index('ix_transfer_lines_product_id', 'transfer_lines', ['product_id'])

    if op.get_bind().dialect.name == 'postgresql':
        _upgrade_postgresql(main_id)
    else:
        _upgrade_sqlite(main_id)
    op.create_index('ix_stock_movements_location_id_id', 'stock_movements', ['location_id', 'id'])
    op.create_index('ix_stock_movements_transfer_id', 'stock_movements', ['transfer_id'])


def _upgrade_postgresql(main_id: int):
    for table in ('reservations', 'stock_movements'):
        # A constant default: PostgreSQL records it once instead of rewriting every row.
        op.execute(f'ALTER TABLE {table} ADD COLUMN location_id integer NOT NULL'
                   f' DEFAULT {int(main_id)}')
        op.execute(f'ALTER TABLE {table} ALTER COLUMN location_id DROP DEFAULT')
        op.create_foreign_key(op.f(f'fk_{table}_location_id_locations'), table, 'locations',
                              ['location_id'], ['id'])
    op.add_column('stock_movements', sa.Column('transfer_id', sa.Integer(), nullable=True))
    op.create_foreign_key(op.f('fk_stock_movements_transfer_id_transfers'), 'stock_movements',
                          'transfers', ['transfer_id'], ['id'])
    # Widening a varchar is a catalogue change too.
    op.alter_column('stock_movements', 'kind', type_=sa.String(length=20),
                    existing_type=sa.String(length=10), existing_nullable=False)
    op.drop_constraint(op.f('ck_stock_movements_kind_known'), 'stock_movements', type_='check')
    op.create_check_constraint(op.f('ck_stock_movements_kind_known'), 'stock_movements',
                               _kinds(NEW_KINDS))


def _upgrade_sqlite(main_id: int):
    # In place: rebuilding `reservations` would drop a table the ledger's foreign key names.
    with op.batch_alter_table('reservations', recreate='never') as batch_op:
        batch_op.add_column(sa.Column('location_id', sa.Integer(), nullable=False,
                                      server_default=str(int(main_id))))
    with _rebuilt('stock_movements') as batch_op:
        batch_op.add_column(sa.Column('location_id', sa.Integer(), nullable=False,
                                      server_default=str(int(main_id))))
        batch_op.add_column(sa.Column('transfer_id', sa.Integer(), nullable=True))
        batch_op.alter_column('kind', type_=sa.String(length=20),
                              existing_type=sa.String(length=10), existing_nullable=False)
        batch_op.drop_constraint(op.f('ck_stock_movements_kind_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_stock_movements_kind_known'),
                                         _kinds(NEW_KINDS))
        batch_op.create_foreign_key(op.f('fk_stock_movements_location_id_locations'),
                                    'locations', ['location_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_stock_movements_transfer_id_transfers'),
                                    'transfers', ['transfer_id'], ['id'])
    _sqlite_append_only()


@contextmanager
def _rebuilt(table: str):
    """A SQLite table rebuilt by batch mode. Reflecting it reflects the tables its foreign
    keys name; products' expression index (lower(sku)) is not reflected, and need not be:
    only `table` is rebuilt."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
        with op.batch_alter_table(table, recreate='always') as batch_op:
            yield batch_op


def _sqlite_append_only():
    # A rebuilt table loses its triggers: the ledger stays append-only (as in 0001).
    op.execute("""
        CREATE TRIGGER stock_movements_append_only
        BEFORE UPDATE ON stock_movements
        BEGIN SELECT RAISE(ABORT, 'stock_movements is append-only'); END
    """)


def downgrade():
    """Back to one location: refused once anything happened at another location (stock,
    a hold, a ledger line) or any transfer exists, since the old schema cannot say it and
    the ledger is never rewritten."""
    bind = op.get_bind()
    elsewhere = bind.execute(sa.text(
        "SELECT (SELECT count(*) FROM stock_movements m JOIN locations l"
        "        ON l.id = m.location_id WHERE NOT l.is_default)"
        "     + (SELECT count(*) FROM reservations r JOIN locations l"
        "        ON l.id = r.location_id WHERE NOT l.is_default)"
        "     + (SELECT count(*) FROM transfers)")).scalar_one()
    if elsewhere:
        raise RuntimeError("cannot go back to one location: stock has moved at other"
                           " locations or between them")
    op.drop_index('ix_stock_movements_transfer_id', table_name='stock_movements')
    op.drop_index('ix_stock_movements_location_id_id', table_name='stock_movements')
    if bind.dialect.name == 'postgresql':
        op.drop_constraint(op.f('ck_stock_movements_kind_known'), 'stock_movements',
                           type_='check')
        op.create_check_constraint(op.f('ck_stock_movements_kind_known'), 'stock_movements',
                                   _kinds(OLD_KINDS))
        op.alter_column('stock_movements', 'kind', type_=sa.String(length=10),
                        existing_type=sa.String(length=20), existing_nullable=False)
        op.drop_column('stock_movements', 'transfer_id')
        op.drop_column('stock_movements', 'location_id')
        op.drop_column('reservations', 'location_id')
    else:
        with _rebuilt('stock_movements') as batch_op:
            batch_op.drop_constraint(op.f('fk_stock_movements_transfer_id_transfers'),
                                     type_='foreignkey')
            batch_op.drop_constraint(op.f('fk_stock_movements_location_id_locations'),
                                     type_='foreignkey')
            batch_op.drop_column('transfer_id')
            batch_op.drop_column('location_id')
            batch_op.drop_constraint(op.f('ck_stock_movements_kind_known'), type_='check')
            batch_op.create_check_constraint(op.f('ck_stock_movements_kind_known'),
                                             _kinds(OLD_KINDS))
            batch_op.alter_column('kind', type_=sa.String(length=10),
                                  existing_type=sa.String(length=20), existing_nullable=False)
        _sqlite_append_only()
        with op.batch_alter_table('reservations', recreate='never') as batch_op:
            batch_op.drop_column('location_id')
    op.drop_table('transfer_lines')
    op.drop_table('transfers')
    op.drop_table('stock_levels')
    op.drop_index('uq_locations_default', table_name='locations')
    op.drop_table('locations')
