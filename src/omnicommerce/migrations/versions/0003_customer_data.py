"""customer data platform: events, identity graph, merge journal, identity rules, consent, computed
traits; matching attributes and keys, the review queue, imports

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import omnicommerce.platform.db

revision = "0003"
down_revision = "0001"
branch_labels = ("customer_data",)
depends_on = None

UTC = omnicommerce.platform.db.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("merged_into", sa.String(length=40), nullable=True))
        batch.create_index("ix_customers_merged_into", ["merged_into"], unique=False)
    op.create_table(
        "customer_identities",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("value", sa.String(length=254), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("origin_customer_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_identities")),
        sa.UniqueConstraint("type", "value", name="uq_customer_identities_type_value"),
    )
    op.create_index("ix_customer_identities_customer_id", "customer_identities", ["customer_id"])
    op.create_table(
        "customer_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("customer_id", sa.String(length=40), nullable=True),
        sa.Column("origin_customer_id", sa.String(length=40), nullable=True),
        sa.Column("anonymous_id", sa.String(length=200), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=40), nullable=True),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("timestamp", UTC(timezone=True), nullable=False),
        sa.Column("received_at", UTC(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_events")),
        sa.UniqueConstraint("message_id", name=op.f("uq_customer_events_message_id")),
    )
    op.create_index(
        "ix_customer_events_customer_id_timestamp", "customer_events", ["customer_id", "timestamp"]
    )
    op.create_index("ix_customer_events_anonymous_id", "customer_events", ["anonymous_id"])
    op.create_table(
        "customer_merges",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("survivor_id", sa.String(length=40), nullable=False),
        sa.Column("merged_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("undone_at", UTC(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_merges")),
    )
    op.create_index("ix_customer_merges_survivor_id", "customer_merges", ["survivor_id"])
    op.create_index("ix_customer_merges_merged_id", "customer_merges", ["merged_id"])
    op.create_table(
        "identity_rules",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_rules")),
    )
    op.create_table(
        "customer_consents",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("recorded_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "purpose", "channel", name=op.f("pk_customer_consents")),
    )
    op.create_table(
        "customer_traits",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("first_seen", UTC(timezone=True), nullable=False),
        sa.Column("last_seen", UTC(timezone=True), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_traits")),
    )
    op.create_table(
        "customer_channels",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "channel", name=op.f("pk_customer_channels")),
    )
    op.create_table(
        "customer_order_stats",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("order_count", sa.Integer(), nullable=False),
        sa.Column("lifetime_value", sa.BigInteger(), nullable=False),
        sa.Column("last_purchase_at", UTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "currency", name=op.f("pk_customer_order_stats")),
    )
    op.create_table(
        "customer_affinities",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "kind", "key", name=op.f("pk_customer_affinities")),
    )
    _create_matching_tables()


def _create_matching_tables() -> None:
    op.create_table(
        "customer_attributes",
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=True),
        sa.Column("surname", sa.String(length=100), nullable=True),
        sa.Column("date_of_birth", sa.String(length=10), nullable=True),
        sa.Column("street_number", sa.String(length=20), nullable=True),
        sa.Column("address_1", sa.String(length=200), nullable=True),
        sa.Column("address_2", sa.String(length=200), nullable=True),
        sa.Column("suburb", sa.String(length=100), nullable=True),
        sa.Column("postcode", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=50), nullable=True),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.Column("matched_at", UTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_attributes")),
    )
    op.create_table(
        "customer_match_keys",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("key", "customer_id", name=op.f("pk_customer_match_keys")),
    )
    op.create_index("ix_customer_match_keys_customer_id", "customer_match_keys", ["customer_id"])
    op.create_table(
        "identity_reviews",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("left_id", sa.String(length=40), nullable=False),
        sa.Column("right_id", sa.String(length=40), nullable=False),
        sa.Column("pair_key", sa.String(length=81), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("origin", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("decided_at", UTC(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("merge_id", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_reviews")),
        sa.UniqueConstraint("pair_key", name=op.f("uq_identity_reviews_pair_key")),
    )
    op.create_index("ix_identity_reviews_status_id", "identity_reviews", ["status", "id"])
    op.create_table(
        "customer_imports",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("mapping", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("finished_at", UTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_imports")),
    )


def downgrade() -> None:
    op.drop_table("customer_imports")
    op.drop_index("ix_identity_reviews_status_id", table_name="identity_reviews")
    op.drop_table("identity_reviews")
    op.drop_index("ix_customer_match_keys_customer_id", table_name="customer_match_keys")
    op.drop_table("customer_match_keys")
    op.drop_table("customer_attributes")
    op.drop_table("customer_affinities")
    op.drop_table("customer_order_stats")
    op.drop_table("customer_channels")
    op.drop_table("customer_traits")
    op.drop_table("customer_consents")
    op.drop_table("identity_rules")
    op.drop_index("ix_customer_merges_merged_id", table_name="customer_merges")
    op.drop_index("ix_customer_merges_survivor_id", table_name="customer_merges")
    op.drop_table("customer_merges")
    op.drop_index("ix_customer_events_anonymous_id", table_name="customer_events")
    op.drop_index("ix_customer_events_customer_id_timestamp", table_name="customer_events")
    op.drop_table("customer_events")
    op.drop_index("ix_customer_identities_customer_id", table_name="customer_identities")
    op.drop_table("customer_identities")
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_merged_into")
        batch.drop_column("merged_into")
