"""Catalog tables. ``category_ids`` and ``hidden_channels`` live on the product as padded,
space-separated text (see ``domain.pack_ids``) so a SKU lookup with everything other contexts
need is one join, and filters are one ``LIKE``."""

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from omnicommerce.platform.db import UTCDateTime, metadata

categories = Table(
    "catalog_categories",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", String(64), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

products = Table(
    "catalog_products",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("category_ids", Text, nullable=False, default=""),
    Column("hidden_channels", Text, nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

variants = Table(
    "catalog_variants",
    metadata,
    Column("sku", String(64), primary_key=True),
    Column("barcode", String(64), nullable=True, unique=True),
    Column("product_id", String(40), nullable=False),
    Column("name", String(300), nullable=False),
    Column("weight_grams", Integer, nullable=False, default=0),
    Column("attributes", Text, nullable=False, default="{}"),  # JSON object
    Column("position", Integer, nullable=False, default=0),  # order within the product
    Column("active", Boolean, nullable=False, default=True),
    Index("ix_catalog_variants_product_id", "product_id"),
)
