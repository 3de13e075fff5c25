"""Loyalty jobs: backfill from history, reconcile, expire, liability, export (called by the CLI and the demo)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import redis

from recsys.clock import utcnow
from recsys.columns import Columns
from recsys.loyalty import ops
from recsys.loyalty.ledger import RedisLedger, indexed_customers
from recsys.loyalty.ops import decode_account
from recsys.loyalty.program import load_program
from recsys.store.keys import Keys

BATCH = 2000  # script calls per pipeline: one round trip and one AOF fsync group for the whole batch
Progress = Callable[[int, int], None]


def _orders(frame: pl.DataFrame, program: Any, catalog: pl.DataFrame | None) -> pl.DataFrame:
    """Return one row per (customer, order): first timestamp, amount, multiplier-weighted value; oldest first."""
    weight = pl.lit(1.0)
    if catalog is not None and program.category_multipliers and Columns.category in catalog.columns:
        mult = pl.DataFrame(
            {
                Columns.category: list(program.category_multipliers),
                "_mult": [float(v) for v in program.category_multipliers.values()],
            }
        )
        frame = frame.join(catalog.select(Columns.item_id, Columns.category), on=Columns.item_id, how="left")
        frame = frame.join(mult, on=Columns.category, how="left")
        weight = pl.col("_mult").fill_null(1.0)
    return (
        frame.group_by(Columns.customer_id, Columns.order_id)
        .agg(
            pl.col(Columns.timestamp).min(),
            pl.col(Columns.amount).sum(),
            (pl.col(Columns.amount) * weight).sum().alias("_value"),
        )
        .sort(Columns.timestamp, Columns.customer_id, Columns.order_id)
    )


def _link_returns(returns: pl.DataFrame, transactions: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Give each return line whose order id the customer never bought under the customer's latest earlier order
    with the same item (a return without a receipt; e.g. Online Retail's ``C<invoice>`` cancellations, which
    never name the invoice they cancel). Return the lines and how many were linked; the rest keep their id.
    """
    c, o, i, t = Columns.customer_id, Columns.order_id, Columns.item_id, Columns.timestamp
    if i not in returns.columns or i not in transactions.columns:
        return returns, 0
    known = transactions.select(c, o).unique().with_columns(pl.lit(True).alias("_known"))
    returns = returns.join(known, on=[c, o], how="left")
    direct = returns.filter(pl.col("_known").is_not_null()).drop("_known")
    loose = returns.filter(pl.col("_known").is_null()).drop("_known").sort(t)
    if not loose.height:
        return direct, 0
    bought = transactions.select(c, i, pl.col(o).alias("_bought"), pl.col(t).cast(loose.schema[t])).sort(t)
    loose = loose.join_asof(bought, on=t, by=[c, i], strategy="backward", check_sortedness=False)
    linked = int(loose["_bought"].is_not_null().sum())
    loose = loose.with_columns(pl.coalesce("_bought", o).alias(o)).drop("_bought")
    return pl.concat([direct, loose.select(direct.columns)], how="vertical"), linked


def _shifted(result: Any, end_at: datetime) -> Any:
    """Return a copy of ``result`` whose transactions (and returns) are shifted so the latest line is at ``end_at``."""
    from types import SimpleNamespace

    ts = Columns.timestamp
    latest = result.transactions.get_column(ts).max()
    delta = end_at - latest
    returns = getattr(result, "returns", None)
    if returns is not None and returns.height:
        delta = end_at - max(latest, returns.get_column(ts).max())
        returns = returns.with_columns(pl.col(ts) + delta)
    return SimpleNamespace(
        transactions=result.transactions.with_columns(pl.col(ts) + delta),
        returns=returns,
        catalog=getattr(result, "catalog", None),
    )


def _replay_stream(orders: pl.DataFrame, returns: pl.DataFrame | None) -> pl.DataFrame:
    """Merge earns (one per order) and returns (one per return line) into one stream in timestamp order.

    Columns: customer, order, timestamp, amount, ``_value`` (null for returns), ``_return`` (False for earns),
    ``_key`` (a return line's identity: order, item, quantity, amount and the occurrence among identical lines,
    in time order; null for earns). Each line reverses its share under its own key, so a rerun over a history that has
    grown applies only the new return lines (the ledger adds partial returns up, capped at the whole order).
    The sort is stable on (timestamp, earn-before-return), so at an equal timestamp an order's earn comes before
    its return, and earns keep ``_orders``' (timestamp, customer, order) order.
    """
    ts_type = orders.schema[Columns.timestamp]
    earns = orders.select(
        pl.col(Columns.customer_id).cast(pl.String),
        pl.col(Columns.order_id).cast(pl.String),
        pl.col(Columns.timestamp),
        pl.col(Columns.amount).cast(pl.Float64),
        pl.col("_value").cast(pl.Float64),
        pl.lit(False).alias("_return"),
        pl.lit(None, dtype=pl.String).alias("_key"),
    )
    if returns is None or not returns.height:
        return earns
    c, o, t, a = Columns.customer_id, Columns.order_id, Columns.timestamp, Columns.amount
    # no timestamp in the identity: a shifted replay (``end_at``) must find the same keys; identical lines of one
    # order are told apart by their occurrence number, in time order
    identity = [
        pl.col(o).cast(pl.String),
        *(pl.col(col).cast(pl.String) for col in (Columns.item_id, Columns.quantity) if col in returns.columns),
        pl.col(a).round(2).cast(pl.String),
    ]
    backs = (
        returns.sort(t, c, o, maintain_order=True)
        .with_columns(pl.concat_str(identity, separator="|", ignore_nulls=False).fill_null("?").alias("_id"))
        .with_columns(pl.col("_id").cum_count().over(c, "_id").alias("_n"))
        .select(
            pl.col(c).cast(pl.String),
            pl.col(o).cast(pl.String),
            pl.col(t).cast(ts_type),
            pl.col(a).cast(pl.Float64),
            pl.lit(None, dtype=pl.Float64).alias("_value"),
            pl.lit(True).alias("_return"),
            (pl.col("_id") + "#" + pl.col("_n").cast(pl.String)).alias("_key"),
        )
    )
    return pl.concat([earns, backs], how="vertical").sort(Columns.timestamp, "_return", maintain_order=True)


def run_backfill(
    client: redis.Redis,
    keys: Keys,
    program_path: Path,
    result: Any,
    on_progress: Progress | None = None,
    end_at: datetime | None = None,
) -> dict[str, Any]:
    """Replay historic orders (and returns) in timestamp order into the ledger; return a summary.

    Earns and returns form one stream sorted by timestamp (an order's earn before its return at an equal
    timestamp), sent in pipelined batches, so every step's expiry sees exactly the lots due at its time.
    Idempotent: each order earns under the key ``backfill:<order>`` and each return line reverses under a key
    naming the line, so a rerun adds nothing, and a rerun over a longer history applies only its new lines.
    ``returns_skipped`` counts returns the ledger refused: ``unknown_order`` (no earned order with that id, e.g.
    a return dated before its order), ``conflict`` (idempotency key reused with a different request) and
    ``error`` (any other failure). A return line whose order id the customer never bought is first linked to
    the customer's latest earlier order with that item (``return_lines_linked_to_purchase`` counts them).
    ``end_at`` (the demo passes now) shifts the whole history so its last line falls at ``end_at``: balances,
    expiry and tier windows are then live today rather than years ago; ids and amounts are unchanged.
    Raises ``ConfigError`` for a bad program file.
    """
    if end_at is not None:
        result = _shifted(result, end_at)
    program = load_program(program_path)
    ledger = RedisLedger(client, keys, program)
    ledger.init_stock()
    orders = _orders(result.transactions, program, getattr(result, "catalog", None))
    returns, linked = getattr(result, "returns", None), 0
    if returns is not None and returns.height:
        returns, linked = _link_returns(returns, result.transactions)
    stream = _replay_stream(orders, returns)
    total = stream.height
    done, refused, reversed_lines = 0, 0, 0
    skipped = {"unknown_order": 0, "conflict": 0, "error": 0}
    for batch in stream.iter_slices(BATCH):
        calls, is_return = [], []
        for cid, oid, ts, amount, value, back, line in batch.iter_rows():
            amt = Decimal(str(round(amount, 2)))
            if back:
                call = ops.reverse_call(keys, cid, oid, amt, ts, f"backfill-return:{oid}:{line}")
            else:
                call = ops.earn_call(
                    program, keys, cid, oid, amt, [], ts, f"backfill:{oid}", value=Decimal(str(round(value, 4)))
                )
            calls.append((call, cid))
            is_return.append(back)
        for back, answer in zip(is_return, ledger.run_many(calls), strict=True):
            if not back:
                refused += isinstance(answer, Exception)
                continue
            status = None if isinstance(answer, Exception) else answer[0]
            status = status.decode() if isinstance(status, bytes) else status
            if status in ("ok", "replay"):
                reversed_lines += 1
            elif status in ("unknown_order", "conflict"):
                skipped[status] += 1
            else:
                skipped["error"] += 1
        done += batch.height
        if on_progress:
            on_progress(done, total)
    # outstanding as of the end of the replayed history (points older than the program's expiry are gone then)
    summary = liability(client, keys, program_path, now=stream.get_column(Columns.timestamp).max() if total else None)
    return {
        "orders": orders.height,
        "returns_applied": reversed_lines,
        "return_lines_linked_to_purchase": linked,
        "returns_skipped": skipped,
        "errors": refused,
        **summary,
    }


def _accounts(client: redis.Redis, keys: Keys) -> dict[str, dict[str, Any]]:
    customers = indexed_customers(client, keys)
    pipe = client.pipeline(transaction=False)
    for cid in customers:
        pipe.hgetall(keys.loyalty_account(cid))
    return {cid: decode_account(raw) for cid, raw in zip(customers, pipe.execute(), strict=True)}


def reconcile(client: redis.Redis, keys: Keys, on_progress: Progress | None = None) -> dict[str, Any]:
    """Check balance == sum of entries == sum of lots and balance >= 0 for every customer; return counts and
    mismatches."""
    customers = indexed_customers(client, keys)
    mismatches: list[dict[str, Any]] = []
    for start in range(0, len(customers), 500):
        chunk = customers[start : start + 500]
        pipe = client.pipeline(transaction=False)
        for cid in chunk:
            pipe.hgetall(keys.loyalty_account(cid))
            pipe.lrange(keys.loyalty_entries(cid), 0, -1)
        raw = pipe.execute()
        for i, cid in enumerate(chunk):
            acct = decode_account(raw[2 * i])
            entries = sum(json.loads(e)["amount"] for e in raw[2 * i + 1])
            lots = sum(acct["lots"].values())
            if not (acct["balance"] == entries == lots) or acct["balance"] < 0:
                mismatches.append({"customer_id": cid, "balance": acct["balance"], "entries": entries, "lots": lots})
        if on_progress:
            on_progress(min(start + 500, len(customers)), len(customers))
    return {"customers": len(customers), "mismatches": mismatches}


def expire(client: redis.Redis, keys: Keys, program_path: Path, now: datetime | None = None) -> dict[str, Any]:
    """Expire every customer's due lots at ``now`` (default: current UTC time), review tiers, and prune the stock
    reservations of decided redemptions; return totals."""
    now = now or utcnow()
    program = load_program(program_path)
    ledger = RedisLedger(client, keys, program)
    customers = ledger.customers()
    expired, tiers = 0, {t.name: 0 for t in program.tiers}
    for start in range(0, len(customers), BATCH):
        calls = [(ops.expire_call(keys, cid, now, program), cid) for cid in customers[start : start + BATCH]]
        answers = [json.loads(a[1]) for a in ledger.run_many(calls) if not isinstance(a, Exception)]
        expired += sum(a["expired"] for a in answers)
        for a in answers:
            tiers[program.tier_at(a["tier"]).name] += 1
    # housekeeping: reservations of decided redemptions are no longer needed (keeps reward stock hashes small)
    reservations = ledger.prune_reservations()
    return {
        "customers": len(customers),
        "points_expired": expired,
        "tiers": tiers,
        "reservations_pruned": reservations["pruned"],
        "reservations_open": reservations["open"],
    }


def liability(client: redis.Redis, keys: Keys, program_path: Path, now: datetime | None = None) -> dict[str, Any]:
    """Return outstanding points, their value in cents and as currency text, debt, and customers per tier.

    Points whose expiry date has passed at ``now`` (default: the current UTC time) are not outstanding, even
    before ``centric loyalty expire`` has booked their expiry.
    """
    program = load_program(program_path)
    accounts = _accounts(client, keys)
    at = now or utcnow()
    points = sum(ops.live_balance(a, at) for a in accounts.values())
    value_cents = int(Decimal(points) * program.point_value_cents)
    tiers: dict[str, int] = {t.name: 0 for t in program.tiers}
    for a in accounts.values():
        tiers[program.tier_at(a["tier"]).name] += 1
    return {
        "customers": len(accounts),
        "points_outstanding": points,
        "liability_cents": value_cents,
        "liability": f"{Decimal(value_cents) / 100:.2f}",
        "debt_points": sum(a["debt"] for a in accounts.values()),
        "tiers": tiers,
    }


def export(client: redis.Redis, keys: Keys, out: Path) -> dict[str, Any]:
    """Write every ledger entry to Parquet at ``out``; return the row count."""
    customers = indexed_customers(client, keys)
    rows: list[dict[str, Any]] = []
    for start in range(0, len(customers), 500):
        pipe = client.pipeline(transaction=False)
        for cid in customers[start : start + 500]:
            pipe.lrange(keys.loyalty_entries(cid), 0, -1)
        for entries in pipe.execute():
            rows.extend(json.loads(e) for e in entries)
    schema = {
        "id": pl.String,
        "customer_id": pl.String,
        "type": pl.String,
        "amount": pl.Int64,
        "points": pl.Int64,
        "shortfall": pl.Int64,
        "debt_paid": pl.Int64,
        "reason": pl.String,
        "source": pl.String,
        "idempotency_key": pl.String,
        "at": pl.Int64,
    }
    frame = pl.DataFrame(
        [
            {k: (str(r.get(k)) if t == pl.String and r.get(k) is not None else r.get(k)) for k, t in schema.items()}
            for r in rows
        ],
        schema=schema,
    )
    frame = frame.with_columns(pl.from_epoch("at", time_unit="s").dt.replace_time_zone("UTC").alias("at"))
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out)
    return {"entries": frame.height, "customers": len(customers), "path": str(out)}
