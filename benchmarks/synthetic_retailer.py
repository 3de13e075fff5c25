"""A synthetic grocery retailer with realistic skew, written in the standard transactions schema (Parquet).

    .venv/bin/python -m benchmarks.synthetic_retailer --size 1m --out /tmp/retailer-1m [--seed 0]
    .venv/bin/python -m benchmarks.synthetic_retailer --customers 5000 --items 2000 --out /tmp/tiny

Writes ``transactions.parquet`` (``customer_id, item_id, timestamp, quantity, price, order_id, store_id``: the
standard schema of docs/data.md) and ``catalog.parquet`` (``item_id, name, category, price``). The structure
follows The Complete Journey: baskets of several lines, dates over two years, a catalog of categories and prices,
each household shopping mostly in one store. The skew is what makes a real retailer hard to score:

- item popularity is Zipf (``--zipf``, exponent 1.0 by default): a few hundred items take a large share of the lines;
- customers are heavy-tailed: baskets per customer are log-normal (most buy a few times, some every week), so a few
  per cent of customers hold a large share of the lines;
- each customer has favourite categories and a handful of staple items bought again and again, so buy-again and
  repeat categories carry signal, as they do in grocery data;
- customers join over the two years and some lapse, so recency and frequency differ (CLV and churn have work to do).

Everything is vectorised numpy and polars and seeded: the same arguments give the same files. The named sizes
(``--size``) are 10k, 100k and 1m customers, with 20 purchase lines per customer on average (1m: 50k items and
about 20M lines). Generating is not part of any measured pipeline.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

SIZES: dict[str, tuple[int, int]] = {  # name -> (customers, items)
    "10k": (10_000, 5_000),
    "100k": (100_000, 20_000),
    "1m": (1_000_000, 50_000),
}
LINES_PER_CUSTOMER = 20.0  # Complete Journey has ~600 lines per household over two years; we keep 20 (20M at 1M)
START = np.datetime64("2023-01-01T00:00:00", "s")
DAYS = 730  # two years
STORES = 200
FAVOURITES = 3  # favourite categories per customer
STAPLES = 6  # staple items per customer
MIX = (0.35, 0.30, 0.35)  # share of lines: a staple, an item of a favourite category, any item (by popularity)


@dataclass(frozen=True)
class Spec:
    """What to generate: ``customers``, ``items``, mean ``lines_per_customer``, Zipf exponent, ``seed``."""

    customers: int
    items: int
    lines_per_customer: float = LINES_PER_CUSTOMER
    zipf: float = 1.0
    seed: int = 0

    @property
    def categories(self) -> int:
        return max(5, self.items // 125)  # 1m: 400 categories of ~125 items, like a grocery commodity level


def spec_for(size: str, seed: int = 0) -> Spec:
    """The :class:`Spec` of a named size (``10k``, ``100k``, ``1m``); ``ValueError`` names the known sizes."""
    key = size.lower()
    if key not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    customers, items = SIZES[key]
    return Spec(customers=customers, items=items, seed=seed)


def _zipf_weights(n: int, exponent: float) -> np.ndarray:
    return 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent


def _draw_in_category(
    rng: np.random.Generator, cats: np.ndarray, cum: np.ndarray, cat_lo: np.ndarray, cat_mass: np.ndarray
) -> np.ndarray:
    """One item (index into the category-sorted order) per entry of ``cats``, by popularity within the category."""
    u = cat_lo[cats] + rng.random(cats.size) * cat_mass[cats]
    return np.minimum(np.searchsorted(cum, u, side="right"), cum.size - 1)


def catalog_frame(spec: Spec) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The catalog, plus each item's category (int) and popularity weight (Zipf over a random ranking)."""
    rng = np.random.default_rng([spec.seed, 1])
    n_cat = spec.categories
    # Category sizes are skewed too (a few big aisles, many small ones), every category has at least one item.
    cat_share = rng.dirichlet(np.full(n_cat, 0.8))
    category = np.sort(rng.choice(n_cat, size=spec.items, p=cat_share))
    category[:n_cat] = np.arange(n_cat)
    category.sort()
    popularity = _zipf_weights(spec.items, spec.zipf)[rng.permutation(spec.items)]
    cat_price = rng.lognormal(1.0, 0.6, n_cat)  # typical unit price per category (median ~2.7)
    price = np.round(cat_price[category] * rng.lognormal(0.0, 0.35, spec.items), 2).clip(0.1)
    ids = pl.Series("i", np.arange(spec.items)).cast(pl.String).str.zfill(6)
    frame = pl.DataFrame(
        {
            "item_id": ("I" + ids).alias("item_id"),
            "name": pl.Series(np.arange(spec.items)).cast(pl.String).str.zfill(6).alias("name"),
            "category": pl.Series(category).cast(pl.String).str.zfill(4),
            "price": price,
        }
    ).with_columns(
        ("Product " + pl.col("name")).alias("name"),
        ("CAT" + pl.col("category")).alias("category"),
    )
    return frame, category, popularity


def transactions_frame(spec: Spec, category: np.ndarray, popularity: np.ndarray, price: np.ndarray) -> pl.DataFrame:
    """Every purchase line of every customer (see the module docstring for the shape of the skew)."""
    rng = np.random.default_rng([spec.seed, 2])
    n_cust, n_cat = spec.customers, spec.categories
    lines_per_basket = 2.5  # mean (1 + Poisson(1.5)), like CJ's multi-line baskets
    mean_baskets = spec.lines_per_customer / lines_per_basket
    sigma = 1.0  # log-normal spread of baskets per customer: heavy tail
    baskets = 1 + np.floor(rng.lognormal(np.log(mean_baskets - 0.5) - sigma**2 / 2, sigma, n_cust)).astype(np.int64)
    baskets = np.minimum(baskets, 300)
    n_baskets = int(baskets.sum())
    basket_customer = np.repeat(np.arange(n_cust, dtype=np.int64), baskets)
    basket_lines = 1 + rng.poisson(lines_per_basket - 1, n_baskets)
    n_lines = int(basket_lines.sum())
    line_basket = np.repeat(np.arange(n_baskets, dtype=np.int64), basket_lines)
    line_customer = basket_customer[line_basket]

    # Items are ordered by category, so "an item of category c by popularity" is a search in one cumulative array.
    cum = np.cumsum(popularity)
    total = cum[-1]
    cat_mass = np.bincount(category, weights=popularity, minlength=n_cat)
    cat_lo = np.concatenate([[0.0], np.cumsum(cat_mass)[:-1]])
    favourites = rng.choice(n_cat, size=(n_cust, FAVOURITES), p=cat_mass / total)
    staple_cats = favourites[np.arange(n_cust)[:, None], rng.integers(0, FAVOURITES, (n_cust, STAPLES))]
    staples = _draw_in_category(rng, staple_cats.ravel(), cum, cat_lo, cat_mass).reshape(n_cust, STAPLES)

    kind = rng.choice(3, size=n_lines, p=MIX)
    item = np.empty(n_lines, dtype=np.int64)
    pick = kind == 0
    item[pick] = staples[line_customer[pick], rng.integers(0, STAPLES, int(pick.sum()))]
    pick = kind == 1
    cats = favourites[line_customer[pick], rng.integers(0, FAVOURITES, int(pick.sum()))]
    item[pick] = _draw_in_category(rng, cats, cum, cat_lo, cat_mass)
    pick = kind == 2
    item[pick] = np.minimum(np.searchsorted(cum, rng.random(int(pick.sum())) * total, side="right"), spec.items - 1)

    # Dates: a customer joins at some point of the two years and stays active for a log-normal span; the baskets
    # fall in that window at random times of the shopping day (8:00-21:00).
    joined = rng.integers(0, int(DAYS * 0.7), n_cust)
    span = np.minimum(rng.lognormal(np.log(300), 0.8, n_cust), DAYS - joined).astype(np.int64) + 1
    day = joined[basket_customer] + np.floor(rng.random(n_baskets) * span[basket_customer]).astype(np.int64)
    seconds = day * 86_400 + rng.integers(8 * 3600, 21 * 3600, n_baskets)
    when = (START + seconds.astype("timedelta64[s]")).astype("datetime64[us]")
    store = rng.integers(0, STORES, n_cust)[basket_customer]
    store = np.where(rng.random(n_baskets) < 0.1, rng.integers(0, STORES, n_baskets), store)  # some shop around

    quantity = 1 + rng.poisson(0.3, n_lines)
    discount = np.where(rng.random(n_lines) < 0.12, 0.8, 1.0)  # promotions
    line_price = np.round(price[item] * discount, 2)
    customer_ids = "C" + pl.Series(line_customer).cast(pl.String).str.zfill(7)
    return pl.DataFrame(
        {
            "customer_id": customer_ids,
            "item_id": "I" + pl.Series(item).cast(pl.String).str.zfill(6),
            "timestamp": pl.Series(when[line_basket]).dt.replace_time_zone("UTC"),
            "quantity": quantity.astype(np.float64),
            "price": line_price,
            "order_id": "B" + pl.Series(line_basket).cast(pl.String).str.zfill(9),
            "store_id": "S" + pl.Series(store[line_basket]).cast(pl.String).str.zfill(3),
        }
    )


def generate(spec: Spec, out_dir: Path) -> dict[str, object]:
    """Write ``transactions.parquet`` and ``catalog.parquet`` into ``out_dir``; return their counts and paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    catalog, category, popularity = catalog_frame(spec)
    tx = transactions_frame(spec, category, popularity, catalog.get_column("price").to_numpy())
    tx_path, cat_path = out_dir / "transactions.parquet", out_dir / "catalog.parquet"
    tx.write_parquet(tx_path, row_group_size=1_000_000)
    catalog.write_parquet(cat_path)
    return {
        "transactions": str(tx_path),
        "catalog": str(cat_path),
        "customers": spec.customers,
        "items": spec.items,
        "items_bought": tx.get_column("item_id").n_unique(),
        "lines": tx.height,
        "baskets": tx.get_column("order_id").n_unique(),
        "seed": spec.seed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(SIZES), help="named size: 10k, 100k or 1m customers")
    parser.add_argument("--customers", type=int, help="customers (instead of --size)")
    parser.add_argument("--items", type=int, help="items (with --customers; default customers / 20, ≥ 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zipf", type=float, default=1.0, help="exponent of the item popularity (1.0: grocery-like)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the two Parquet files into")
    args = parser.parse_args(argv)
    if (args.size is None) == (args.customers is None):
        parser.error("give exactly one of --size or --customers")
    if args.size:
        spec = replace(spec_for(args.size, args.seed), zipf=args.zipf)
    else:
        items = args.items or max(100, args.customers // 20)
        spec = Spec(customers=args.customers, items=items, zipf=args.zipf, seed=args.seed)
    started = time.perf_counter()
    info = generate(spec, args.out)
    print(
        f"{info['lines']:,} lines, {info['baskets']:,} baskets, {spec.customers:,} customers, {spec.items:,} items "
        f"→ {args.out} ({time.perf_counter() - started:.1f} s)"
    )


if __name__ == "__main__":
    main()
