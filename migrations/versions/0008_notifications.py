"""Notifications: events written with the change that caused them (the outbox), webhook
endpoints, staff subscriptions, and deliveries the scheduler sends and retries.

New tables only; nothing existing changes.

Revision ID: 0008_notifications
Revises: 0006
Create Date: 2026-12-02 05:30:00

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0008_notifications'
down_revision = '0007_search_words'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _where(sql):
    return {'postgresql_where': sa.text(sql), 'sqlite_where': sa.text(sql)}


def upgrade():
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('events', sa.Text(), nullable=False),
        sa.Column('secret', sa.String(length=200), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by_id', sa.Integer(), sa.ForeignKey('staff_users.id'), nullable=True),
        sa.CheckConstraint('length(secret) >= 16', name='secret_long_enough'),
    )
    op.create_table(
        'notification_events',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('product_id', sa.Integer(), sa.ForeignKey('products.id'), nullable=True),
        sa.Column('alert_id', sa.Integer(), sa.ForeignKey('stock_alerts.id'), nullable=True),
        sa.Column('level', sa.String(length=12), nullable=True),
        sa.Column('available', sa.Integer(), nullable=True),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff_users.id'), nullable=True),
        sa.Column('endpoint_id', sa.Integer(),
                  sa.ForeignKey('webhook_endpoints.id', ondelete='CASCADE'), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('fanned_out', sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('alert_opened', 'alert_escalated', 'alert_resolved', 'out_of_stock',"
            " 'back_in_stock', 'stock_updated', 'test')", name='kind_known'),
        sa.CheckConstraint("kind = 'test' OR product_id IS NOT NULL", name='has_product'),
    )
    op.create_index('ix_notification_events_waiting', 'notification_events', ['id'],
                    **_where('NOT fanned_out'))
    op.create_index('ix_notification_events_created_at', 'notification_events', ['created_at'])
    op.create_index('ix_notification_events_product_id', 'notification_events', ['product_id'])
    op.create_table(
        'notification_subscriptions',
        sa.Column('staff_id', sa.Integer(),
                  sa.ForeignKey('staff_users.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('mode', sa.String(length=10), nullable=False),
        sa.Column('categories', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('off', 'immediate', 'digest')", name='mode_known'),
    )
    op.create_table(
        'notification_deliveries',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('event_id', BigId,
                  sa.ForeignKey('notification_events.id', ondelete='CASCADE'), nullable=True),
        sa.Column('endpoint_id', sa.Integer(),
                  sa.ForeignKey('webhook_endpoints.id', ondelete='CASCADE'), nullable=True),
        sa.Column('staff_id', sa.Integer(),
                  sa.ForeignKey('staff_users.id', ondelete='CASCADE'), nullable=True),
        sa.Column('digest_day', sa.String(length=10), nullable=True),
        sa.Column('digest', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name='status_known'),
        sa.CheckConstraint('(endpoint_id IS NULL) <> (staff_id IS NULL)', name='one_recipient'),
        sa.CheckConstraint('(event_id IS NULL) <> (digest_day IS NULL)', name='event_or_digest'),
        sa.CheckConstraint('digest_day IS NULL OR staff_id IS NOT NULL', name='digest_by_mail'),
        sa.CheckConstraint('attempts >= 0', name='attempts_not_negative'),
    )
    op.create_index('uq_notification_deliveries_event_endpoint', 'notification_deliveries',
                    ['event_id', 'endpoint_id'], unique=True, **_where('endpoint_id IS NOT NULL'))
    op.create_index('uq_notification_deliveries_event_staff', 'notification_deliveries',
                    ['event_id', 'staff_id'], unique=True,
                    **_where('staff_id IS NOT NULL AND event_id IS NOT NULL'))
    op.create_index('uq_notification_deliveries_digest', 'notification_deliveries',
                    ['staff_id', 'digest_day'], unique=True, **_where('digest_day IS NOT NULL'))
    op.create_index('ix_notification_deliveries_due', 'notification_deliveries',
                    ['next_attempt_at', 'id'], **_where("status = 'pending'"))
    op.create_index('ix_notification_deliveries_endpoint_id', 'notification_deliveries',
                    ['endpoint_id', 'id'])
    op.create_index('ix_notification_deliveries_staff_id', 'notification_deliveries',
                    ['staff_id', 'id'])
    op.create_index('ix_notification_deliveries_pending_endpoint', 'notification_deliveries',
                    ['endpoint_id', 'id'], **_where("status = 'pending'"))
    op.create_index('ix_notification_deliveries_pending_staff', 'notification_deliveries',
                    ['staff_id', 'id'], **_where("status = 'pending'"))


def downgrade():
    op.drop_table('notification_deliveries')
    op.drop_table('notification_subscriptions')
    op.drop_table('notification_events')
    op.drop_table('webhook_endpoints')
