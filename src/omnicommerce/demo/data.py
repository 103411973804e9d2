"""Deterministic generation of the demo retailer (pure: no I/O).

"Northwind Outfitters": 4 channels, 2 distribution centers and 12 stores across the US,
~300 products / ~1,200 variants, prices, stock everywhere, customers and a year of orders.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

CHANNELS = [
    ("web", "Web shop", "online", "USD"),
    ("app", "Mobile app", "online", "USD"),
    ("pos", "Store POS", "store", "USD"),
    ("call_center", "Call center", "assisted", "USD"),
]

# id, name, kind, city, postal code, lat, lon, area code, capabilities
LOCATIONS = [
    ("dc-east", "East DC", "dc", "Edison, NJ", "08817", 40.5187, -74.4121, "732", ("ship",)),
    ("dc-west", "West DC", "dc", "Ontario, CA", "91761", 34.0633, -117.6509, "909", ("ship",)),
    (
        "store-001",
        "New York Flatiron",
        "store",
        "New York, NY",
        "10010",
        40.7411,
        -73.9897,
        "212",
        ("ship", "pickup", "curbside", "same_day"),
    ),
    (
        "store-002",
        "Boston Back Bay",
        "store",
        "Boston, MA",
        "02116",
        42.3503,
        -71.0810,
        "617",
        ("ship", "pickup", "curbside"),
    ),
    (
        "store-003",
        "Philadelphia Center City",
        "store",
        "Philadelphia, PA",
        "19103",
        39.9522,
        -75.1742,
        "215",
        ("pickup", "curbside"),
    ),
    (
        "store-004",
        "Washington Penn Quarter",
        "store",
        "Washington, DC",
        "20004",
        38.8951,
        -77.0230,
        "202",
        ("ship", "pickup", "same_day"),
    ),
    (
        "store-005",
        "Atlanta Midtown",
        "store",
        "Atlanta, GA",
        "30308",
        33.7816,
        -84.3830,
        "404",
        ("pickup", "curbside"),
    ),
    (
        "store-006",
        "Miami Brickell",
        "store",
        "Miami, FL",
        "33131",
        25.7617,
        -80.1918,
        "305",
        ("ship", "pickup", "curbside"),
    ),
    (
        "store-007",
        "Chicago Loop",
        "store",
        "Chicago, IL",
        "60603",
        41.8807,
        -87.6297,
        "312",
        ("ship", "pickup", "curbside", "same_day"),
    ),
    (
        "store-008",
        "Dallas Uptown",
        "store",
        "Dallas, TX",
        "75201",
        32.7920,
        -96.8030,
        "214",
        ("pickup", "curbside"),
    ),
    (
        "store-009",
        "Denver LoDo",
        "store",
        "Denver, CO",
        "80202",
        39.7525,
        -104.9995,
        "303",
        ("ship", "pickup"),
    ),
    (
        "store-010",
        "Phoenix Roosevelt Row",
        "store",
        "Phoenix, AZ",
        "85004",
        33.4588,
        -112.0704,
        "602",
        ("pickup", "curbside"),
    ),
    (
        "store-011",
        "Los Angeles Arts District",
        "store",
        "Los Angeles, CA",
        "90013",
        34.0407,
        -118.2468,
        "213",
        ("ship", "pickup", "curbside", "same_day"),
    ),
    (
        "store-012",
        "Seattle Pike Place",
        "store",
        "Seattle, WA",
        "98101",
        47.6097,
        -122.3422,
        "206",
        ("ship", "pickup"),
    ),
]

CATEGORIES = [
    ("apparel", "Apparel", None),
    ("tops", "Tops", "apparel"),
    ("bottoms", "Bottoms", "apparel"),
    ("outerwear", "Outerwear", "apparel"),
    ("footwear", "Footwear", None),
    ("sneakers", "Sneakers", "footwear"),
    ("boots", "Boots", "footwear"),
    ("accessories", "Accessories", None),
    ("bags", "Bags", "accessories"),
    ("hats", "Hats", "accessories"),
    ("home", "Home", None),
    ("kitchen", "Kitchen", "home"),
    ("decor", "Decor", "home"),
]

_NOUNS = {
    "tops": ["Tee", "Henley", "Oxford Shirt", "Polo", "Sweater", "Hoodie"],
    "bottoms": ["Chino", "Jean", "Jogger", "Short", "Trouser"],
    "outerwear": ["Parka", "Rain Jacket", "Fleece", "Puffer Vest", "Field Coat"],
    "sneakers": ["Runner", "Court Sneaker", "Trail Shoe", "Slip-On"],
    "boots": ["Chelsea Boot", "Hiking Boot", "Work Boot"],
    "bags": ["Backpack", "Tote", "Duffel", "Sling Bag"],
    "hats": ["Beanie", "Cap", "Bucket Hat"],
    "kitchen": ["Pour-Over Set", "Chef Knife", "Cast Iron Pan", "Mug Set"],
    "decor": ["Throw Blanket", "Candle", "Planter", "Wall Print"],
}
_ADJECTIVES = [
    "Everyday",
    "Coastal",
    "Alpine",
    "Heritage",
    "Urban",
    "Summit",
    "Harbor",
    "Canyon",
    "Prairie",
    "Northern",
    "Drift",
    "Meridian",
    "Timber",
    "Cedar",
    "Granite",
]
_COLORS = ["Black", "Navy", "Olive", "Sand", "Grey", "Rust", "White", "Forest"]
_SIZES = {
    "tops": ["S", "M", "L", "XL"],
    "bottoms": ["30", "32", "34", "36"],
    "outerwear": ["S", "M", "L", "XL"],
    "sneakers": ["8", "9", "10", "11"],
    "boots": ["8", "9", "10", "11"],
}
_BASE_PRICE = {
    "tops": (1800, 7800),
    "bottoms": (3900, 9800),
    "outerwear": (8900, 32900),
    "sneakers": (6900, 17900),
    "boots": (11900, 24900),
    "bags": (2900, 14900),
    "hats": (1500, 3900),
    "kitchen": (1900, 15900),
    "decor": (1200, 8900),
}
_WEIGHT = {
    "tops": 250,
    "bottoms": 600,
    "outerwear": 1200,
    "sneakers": 900,
    "boots": 1600,
    "bags": 800,
    "hats": 150,
    "kitchen": 1500,
    "decor": 700,
}
_FIRST = [
    "Ava",
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Mateo",
    "Sophia",
    "Lucas",
    "Isabella",
    "Ethan",
    "Mia",
    "James",
    "Amara",
    "Kenji",
    "Priya",
    "Diego",
    "Fatima",
    "Chen",
    "Zoe",
    "Omar",
    "Grace",
    "Ravi",
    "Elena",
    "Samuel",
    "Nora",
    "Aiden",
    "Leila",
    "Marcus",
    "Hana",
    "Tomas",
]
_LAST = [
    "Smith",
    "Johnson",
    "Garcia",
    "Nguyen",
    "Patel",
    "Kim",
    "Brown",
    "Martinez",
    "Lee",
    "Wilson",
    "Anderson",
    "Thomas",
    "Hernandez",
    "Moore",
    "Okafor",
    "Rossi",
    "Silva",
    "Cohen",
    "Ali",
    "Walker",
]


@dataclass
class DemoVariant:
    sku: str
    name: str
    barcode: str
    weight_grams: int
    price: int  # minor units, USD
    attributes: dict[str, str]


@dataclass
class DemoProduct:
    name: str
    description: str
    category_ids: list[str]
    hidden_channels: list[str]
    variants: list[DemoVariant] = field(default_factory=list)


@dataclass
class DemoCustomer:
    email: str
    phone: str
    first_name: str
    last_name: str
    channel: str


@dataclass
class DemoOrder:
    channel: str
    location_id: str | None
    customer_index: int | None
    lines: list[tuple[str, int]]
    placed_at: datetime


@dataclass
class DemoRetailer:
    products: list[DemoProduct]
    stock: list[tuple[str, str, int, int]]  # sku, location, on_hand, safety_stock
    customers: list[DemoCustomer]
    orders: list[DemoOrder]


def _ean13(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(12)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits)) + str(check)


def generate_products(rng: random.Random, target: int = 300) -> list[DemoProduct]:
    leaves = list(_NOUNS)
    products: list[DemoProduct] = []
    seen: set[str] = set()
    while len(products) < target:
        leaf = leaves[len(products) % len(leaves)]
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS[leaf])}"
        if name in seen:
            name = f"{name} {len(products)}"
        seen.add(name)
        parent = next(p for c, _, p in CATEGORIES if c == leaf)
        low, high = _BASE_PRICE[leaf]
        price = rng.randrange(low, high, 100) - 1  # x.99 pricing
        # 1 in 20 products is store-only (hidden from online channels); 1 in 25 is online-only.
        hidden = ["web", "app"] if rng.random() < 0.05 else (["pos"] if rng.random() < 0.04 else [])
        product = DemoProduct(name, f"The {name.lower()}, built to last.", [leaf, parent or leaf], hidden)
        colors = rng.sample(_COLORS, 2 if leaf in _SIZES else 4)
        sizes = _SIZES.get(leaf, [""])
        for color in colors:
            for size in sizes[: 2 if leaf in _SIZES else 1]:
                idx = len(products) * 10 + len(product.variants)
                attrs = {"color": color} | ({"size": size} if size else {})
                product.variants.append(
                    DemoVariant(
                        sku=f"NW-{idx:05d}",
                        name=" / ".join(attrs.values()),
                        barcode=_ean13(rng),
                        weight_grams=_WEIGHT[leaf],
                        price=price,
                        attributes=attrs,
                    )
                )
        products.append(product)
    return products


def generate_stock(rng: random.Random, products: list[DemoProduct]) -> list[tuple[str, str, int, int]]:
    rows = []
    for product in products:
        for v in product.variants:
            for loc, *_ in LOCATIONS:
                if loc.startswith("dc"):
                    rows.append((v.sku, loc, rng.randint(40, 400), 5))
                elif rng.random() < 0.85:
                    rows.append((v.sku, loc, rng.randint(0, 25), 1))
    return rows


def generate_customers(rng: random.Random, n: int) -> list[DemoCustomer]:
    out = []
    for i in range(n):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        area = rng.choice(LOCATIONS)[7]
        phone = f"+1{area}{rng.randint(200, 999)}{rng.randint(1000, 9999)}"
        channel = rng.choices(["web", "app", "pos", "call_center"], [45, 30, 20, 5])[0]
        out.append(
            DemoCustomer(f"{first.lower()}.{last.lower()}{i}@example.com", phone, first, last, channel)
        )
    return out


def generate_orders(
    rng: random.Random, products: list[DemoProduct], n_customers: int, n: int, now: datetime
) -> list[DemoOrder]:
    skus = [(v.sku, p.hidden_channels) for p in products for v in p.variants]
    stores = [loc for loc, _, kind, *_ in LOCATIONS if kind == "store"]
    orders = []
    for _ in range(n):
        channel = rng.choices(["web", "app", "pos", "call_center"], [45, 30, 20, 5])[0]
        lines: dict[str, int] = {}
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 4])):
            sku, hidden = rng.choice(skus)
            if channel not in hidden:
                lines[sku] = lines.get(sku, 0) + rng.choice([1, 1, 1, 2])
        if not lines:
            continue
        known = rng.random() < (0.6 if channel == "pos" else 0.9)
        # Seasonality: more orders in November/December.
        days_ago = int(rng.triangular(0, 365, 40))
        placed = now - timedelta(days=days_ago, minutes=rng.randint(0, 24 * 60))
        orders.append(
            DemoOrder(
                channel,
                rng.choice(stores) if channel == "pos" else None,
                rng.randrange(n_customers) if known and n_customers else None,
                sorted(lines.items()),
                placed,
            )
        )
    return orders


def generate(seed: int, *, customers: int, orders: int, now: datetime) -> DemoRetailer:
    rng = random.Random(seed)
    products = generate_products(rng)
    return DemoRetailer(
        products=products,
        stock=generate_stock(rng, products),
        customers=generate_customers(rng, customers),
        orders=generate_orders(rng, products, customers, orders, now),
    )
