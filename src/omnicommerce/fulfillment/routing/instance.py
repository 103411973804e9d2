"""A seeded, realistic routing instance: the one `omni bench routing` measures (and small ones for tests).

Geography: 30 metro areas in a continental-US-sized box, weighted by size; stores cluster around
metros, ship-to points around metros too. DCs are regional and deep on a narrower assortment;
stores hold a few units of many SKUs, biased to the popular ones; dark stores sit in between.
SKU popularity is Zipf (exponent 1.0) over 20,000 SKUs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omnicommerce.fulfillment.routing.model import Candidate, CostModel, Line, OrderToRoute


@dataclass(frozen=True)
class InstanceParameters:
    seed: int = 42
    orders: int = 5000
    locations: int = 200
    skus: int = 20000
    dcs: int = 6
    dark_stores: int = 14
    metros: int = 30
    zipf_exponent: float = 1.0
    dc_assortment: int = 8000  # the most popular SKUs ...
    dc_carry: float = 0.45  # ... of which each DC carries this share (regional / category assortments)
    dc_stock_cover: float = 1.3  # DC units = cover x expected demand of its region (Poisson-drawn)
    dc_capacity: tuple[int, int] = (1500, 2500)  # packages per day
    dark_assortment: int = 1500
    dark_capacity: tuple[int, int] = (80, 160)
    store_capacity: tuple[int, int] = (15, 45)
    store_assortment_head: int = 50  # SKUs every store carries with probability 0.9 ...
    store_assortment_decay: float = 0.6  # ... decaying as (head / rank) ** decay beyond it
    carrier_base_rate: float = 5.0  # per parcel, on top of pick/pack, distance and weight
    dc_pick_pack: float = 3.5
    dark_pick_pack: float = 4.5
    store_pick_pack: float = 6.0
    lines_distribution: tuple[float, ...] = (0.35, 0.25, 0.17, 0.11, 0.07, 0.05)  # 1..6 lines
    quantity_distribution: tuple[float, ...] = (0.8, 0.15, 0.05)  # 1..3 units


@dataclass(frozen=True)
class Instance:
    parameters: InstanceParameters
    candidates: tuple[Candidate, ...]
    orders: tuple[OrderToRoute, ...]
    costs: CostModel


def generate(p: InstanceParameters) -> Instance:
    rng = np.random.default_rng(p.seed)
    metro_lat = rng.uniform(29.0, 47.0, p.metros)
    metro_lon = rng.uniform(-122.0, -72.0, p.metros)
    metro_weight = rng.pareto(1.2, p.metros) + 1.0
    metro_weight /= metro_weight.sum()
    popularity = 1.0 / np.arange(1, p.skus + 1) ** p.zipf_exponent
    popularity /= popularity.sum()
    weights = np.round(rng.lognormal(mean=-0.4, sigma=0.8, size=p.skus), 2) + 0.05
    skus = [f"sku-{i:05d}" for i in range(p.skus)]  # index = popularity rank
    orders = _orders(p, rng, metro_lat, metro_lon, metro_weight, popularity, skus, weights)
    expected_units = popularity * sum(line.quantity for o in orders for line in o.lines)
    ship_to = np.array([(o.lat, o.lon) for o in orders])
    candidates = _locations(p, rng, metro_lat, metro_lon, metro_weight, expected_units, skus, ship_to)
    return Instance(p, candidates, orders, CostModel(per_package=p.carrier_base_rate))


def _near_metros(
    rng: np.random.Generator, lat: np.ndarray, lon: np.ndarray, weight: np.ndarray, n: int, spread_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    metro = rng.choice(len(lat), size=n, p=weight)
    return lat[metro] + rng.normal(0, spread_deg, n), lon[metro] + rng.normal(0, spread_deg * 1.3, n)


def _orders(
    p: InstanceParameters,
    rng: np.random.Generator,
    metro_lat: np.ndarray,
    metro_lon: np.ndarray,
    metro_weight: np.ndarray,
    popularity: np.ndarray,
    skus: list[str],
    weights: np.ndarray,
) -> tuple[OrderToRoute, ...]:
    lat, lon = _near_metros(rng, metro_lat, metro_lon, metro_weight, p.orders, 0.4)
    cdf = np.cumsum(popularity)
    line_counts = rng.choice(
        np.arange(1, len(p.lines_distribution) + 1), size=p.orders, p=p.lines_distribution
    )
    orders = []
    for n in range(p.orders):
        ranks: list[int] = []
        while len(ranks) < line_counts[n]:
            rank = min(p.skus - 1, int(np.searchsorted(cdf, rng.random())))
            if rank not in ranks:
                ranks.append(rank)
        quantities = rng.choice(
            np.arange(1, len(p.quantity_distribution) + 1), size=len(ranks), p=p.quantity_distribution
        )
        lines = tuple(
            Line(skus[r], int(q), float(weights[r])) for r, q in zip(ranks, quantities, strict=True)
        )
        orders.append(OrderToRoute(f"ord-{n:05d}", lines, float(lat[n]), float(lon[n])))
    return tuple(orders)


def _regional_share(lat: np.ndarray, lon: np.ndarray, ship_to: np.ndarray) -> np.ndarray:
    """Share of the ship-to points nearest to each DC (planar approximation)."""
    scale = np.cos(np.radians(ship_to[:, 0].mean()))
    d = (ship_to[:, None, 0] - lat[None, :]) ** 2 + ((ship_to[:, None, 1] - lon[None, :]) * scale) ** 2
    counts = np.bincount(d.argmin(axis=1), minlength=len(lat)).astype(float)
    return np.asarray(np.maximum(counts, 1.0) / counts.sum())


def _locations(
    p: InstanceParameters,
    rng: np.random.Generator,
    metro_lat: np.ndarray,
    metro_lon: np.ndarray,
    metro_weight: np.ndarray,
    expected_units: np.ndarray,
    skus: list[str],
    ship_to: np.ndarray,
) -> tuple[Candidate, ...]:
    stores = p.locations - p.dcs - p.dark_stores
    candidates: list[Candidate] = []
    dc_lat, dc_lon = _near_metros(rng, metro_lat, metro_lon, metro_weight, p.dcs, 1.5)
    share = _regional_share(dc_lat, dc_lon, ship_to)
    carried = rng.random((p.dcs, p.dc_assortment)) < p.dc_carry
    # stock planned per SKU over the DCs that carry it, weighted by the demand of each DC's region
    weight = carried * share[:, None]
    weight /= np.maximum(weight.sum(axis=0), 1e-12)
    for i in range(p.dcs):
        expected = p.dc_stock_cover * expected_units[: p.dc_assortment] * weight[i]
        units = rng.poisson(expected) + rng.integers(0, 3, p.dc_assortment)
        stock = {skus[r]: int(u) for r, u in enumerate(units) if u > 0 and carried[i, r]}
        capacity = int(rng.integers(*p.dc_capacity))
        candidates.append(_site(f"dc-{i:02d}", "dc", (dc_lat[i], dc_lon[i]), stock, capacity, p.dc_pick_pack))
    dark_lat, dark_lon = _near_metros(rng, metro_lat, metro_lon, metro_weight, p.dark_stores, 0.2)
    for i in range(p.dark_stores):
        units = rng.integers(3, 15, p.dark_assortment)
        stock = {skus[r]: int(u) for r, u in enumerate(units)}
        capacity = int(rng.integers(*p.dark_capacity))
        where = (dark_lat[i], dark_lon[i])
        candidates.append(_site(f"dark-{i:02d}", "dark_store", where, stock, capacity, p.dark_pick_pack))
    store_lat, store_lon = _near_metros(rng, metro_lat, metro_lon, metro_weight, stores, 0.3)
    ranks = np.arange(1, p.skus + 1)
    carry = np.minimum(0.9, 0.9 * (p.store_assortment_head / ranks) ** p.store_assortment_decay)
    for i in range(stores):
        held = np.nonzero(rng.random(p.skus) < carry)[0]
        units = 1 + rng.poisson(1.2, len(held))
        stock = {skus[r]: int(u) for r, u in zip(held, units, strict=True)}
        capacity = int(rng.integers(*p.store_capacity))
        where = (store_lat[i], store_lon[i])
        candidates.append(_site(f"store-{i:03d}", "store", where, stock, capacity, p.store_pick_pack))
    return tuple(candidates)


def _site(
    location_id: str,
    kind: str,
    where: tuple[float, float],
    stock: dict[str, int],
    capacity: int,
    pick_pack: float,
) -> Candidate:
    return Candidate(location_id, kind, float(where[0]), float(where[1]), stock, capacity, pick_pack)
