"""Catalog values and rules: products, their variants (SKU is the natural key) and listings.

Pure Python: no SQLAlchemy, FastAPI or I/O. A product is listed on every channel except the
ones in its ``hidden_channels``; its variants inherit that listing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from omnicommerce.platform.errors import Conflict, InvalidInput, NotFound

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9\-]{0,59}$"


class UnknownSku(NotFound):
    code = "unknown-sku"
    title = "Unknown SKU"


class DuplicateSku(Conflict):
    code = "duplicate-sku"
    title = "SKU already exists"


class DuplicateBarcode(Conflict):
    code = "duplicate-barcode"
    title = "Barcode already exists"


class DuplicateCategory(Conflict):
    code = "duplicate-category"
    title = "Category already exists"


class ProductNotFound(NotFound):
    code = "product-not-found"
    title = "Product not found"


class UnknownCategory(InvalidInput):
    code = "unknown-category"
    title = "Unknown category"


class UnknownListingChannel(InvalidInput):
    code = "unknown-channel"
    title = "Unknown channel"


@dataclass(frozen=True, slots=True)
class VariantInfo:
    """What other contexts need to know about a SKU (see docs/architecture.md)."""

    sku: str
    product_id: str
    product_name: str
    name: str
    barcode: str | None
    category_ids: tuple[str, ...]
    hidden_channels: frozenset[str]
    weight_grams: int
    active: bool

    def listed_on(self, channel: str) -> bool:
        return channel not in self.hidden_channels


def pack_ids(ids: Iterable[str]) -> str:
    """Ids as one padded, space-separated text value: ``" a b "`` so ``LIKE '% a %'`` matches exactly."""
    unique = sorted(set(ids))
    return f" {' '.join(unique)} " if unique else ""


def unpack_ids(packed: str | None) -> tuple[str, ...]:
    return tuple(packed.split()) if packed else ()


def repeated(values: Iterable[str | None]) -> list[str]:
    """Values given more than once (None ignored), sorted, for error messages."""
    counts = Counter(v for v in values if v is not None)
    return sorted(v for v, n in counts.items() if n > 1)


def check_new_variants(skus: list[str], barcodes: list[str | None]) -> None:
    """A batch of new variants may not repeat a SKU or barcode within itself."""
    if dup := repeated(skus):
        raise DuplicateSku(f"SKU(s) given more than once: {', '.join(dup)}", skus=dup)
    if dup := repeated(barcodes):
        raise DuplicateBarcode(f"barcode(s) given more than once: {', '.join(dup)}", barcodes=dup)
