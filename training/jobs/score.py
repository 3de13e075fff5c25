"""Batch scoring by customer range: the per-customer half of training, split so that any job runner can spread it.

``centric train`` fits the models and writes the item-level tables (similar items, fallbacks, items); scoring every
customer is embarrassingly parallel by customer range. Shard ``i`` of ``n`` (0-based) takes the customers
``[start, stop)`` of the model's customer index (boundaries rounded to the models' scoring batch, so a shard scores
exactly the batches a single process would) and writes, under ``DIR/shards/<i>-of-<n>/``:

- ``recommendations.parquet``: the primary model's top-k of those customers, with source and reason, the rows a
  single-process ``centric train`` writes for them, byte for byte;
- ``shard.json``: which shard, its customer range, the model's data fingerprint, the file's row count and sha256.

``centric publish DIR`` takes the shards only when all ``n`` have arrived and verify (``score_shards.merged``).
Decisions are not split: ``centric decide`` arbitrates per-offer budgets over all customers at once (Lagrangian
prices shared by everyone), so they stay one job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recsys.columns import Columns
from recsys.exceptions import ArtifactError, DataError
from recsys.models import Recommender, load_recommender
from recsys.models.base import BATCH_SIZE
from recsys.models.external import recommendations_frame
from recsys.models.parallel import one_blas_thread
from training.jobs.train_outputs import with_reasons

SHARDS_DIR = "shards"
SHARD_MANIFEST = "shard.json"
RECS_FILE = "recommendations.parquet"
REASONS_CHUNK = 20_000  # customers whose recommendation reasons are joined at once (bounds that join's memory)
_SHARD_TEXT = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``"i/n"`` (0 ≤ i < n); raise ``ValueError`` saying what is wrong and what to write instead."""
        match = _SHARD_TEXT.match(text)
        if not match:
            raise ValueError(f"shard {text!r} is not i/n (e.g. 0/4 for the first of four shards)")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or index >= count:
            raise ValueError(f"shard {text!r}: need 0 <= i < n (shards are numbered 0..n-1, e.g. 0/{max(count, 1)})")
        return cls(index, count)

    @property
    def name(self) -> str:
        """Directory name of the shard, ``<i>-of-<n>``."""
        return f"{self.index}-of-{self.count}"

    def customer_range(self, customers: int) -> tuple[int, int]:
        """Return ``[start, stop)`` of this shard's customer indices out of ``customers``.

        Boundaries are multiples of the scoring batch (``BATCH_SIZE``), so every batch a shard scores is a batch a
        single process scores: results do not depend on how the work was split.
        """
        batches = -(-customers // BATCH_SIZE)
        start = min(self.index * batches // self.count * BATCH_SIZE, customers)
        stop = min((self.index + 1) * batches // self.count * BATCH_SIZE, customers)
        return start, stop


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def score_range(model: Recommender, start: int, stop: int, k: int, threads: int = 1) -> pl.DataFrame:
    """Return the model's top-``k`` of customers ``[start, stop)``: ``customer_id, item_id, rank, score``.

    ``threads``: batches scored at once in this process (the rows are the same for any number). BLAS runs on one
    thread even for a range of a single batch, as for every other range: OpenBLAS's float32 products depend on how
    many threads split them, so the rows are the same whatever the chunks, shards or Dask tasks the customers are
    scored in and whatever the machine's cores.
    """
    customers = np.arange(start, stop)
    with one_blas_thread():
        ids, scores = model.recommend(customers, k, threads=threads)
    return recommendations_frame(customers, ids, scores, model.customers_, model.items_)


def reasons_in_chunks(
    recs: pl.DataFrame,
    transactions: pl.DataFrame,
    now: Any,
    similar: pl.DataFrame,
    items: pl.DataFrame,
    chunk: int | None = None,
) -> pl.DataFrame:
    """``train_outputs.with_reasons`` for ``chunk`` customers at a time (default ``REASONS_CHUNK``): the same rows.

    Its "customers who buy X also buy this" join pairs every recommended new item with every list it is similar in,
    so its memory grows with customers × in-degree (2.6 GB of train's peak at 100k customers); a chunk bounds it.
    Each customer's reasons depend on their own lines only, and the result is sorted by customer as the whole is.
    The lines are split into the chunks' customer ranges once (a chunk is a range of the sorted customer ids), not
    filtered again for every chunk, and the chunks come out in order, so they need no sort after the concat.
    """
    chunk = chunk or REASONS_CHUNK
    customer = Columns.customer_id
    if not recs.get_column(customer).is_sorted():
        recs = recs.sort(customer, Columns.rank)
    customers = recs.get_column(customer).unique(maintain_order=True)
    if customers.len() <= chunk:
        return with_reasons(recs, transactions, now, similar, items)
    firsts = customers.gather(np.arange(0, customers.len(), chunk)).cast(pl.String)
    needed = [c for c in (customer, Columns.item_id, Columns.order_id, Columns.timestamp) if c in transactions.columns]
    # chunk c holds the customers in [firsts[c], firsts[c + 1]); lines of other customers get -1 or fall past the end
    lines = transactions.select(needed).with_columns(
        (pl.lit(firsts).search_sorted(pl.col(customer).cast(pl.String), side="right").cast(pl.Int64) - 1).alias(
            "_chunk"
        )
    )
    by_chunk = lines.partition_by("_chunk", as_dict=True, include_key=False)
    del lines
    bounds = np.append(
        recs.get_column(customer).cast(pl.String).search_sorted(firsts, side="left").to_numpy(), recs.height
    )
    frames = []
    for c in range(firsts.len()):
        part = by_chunk.pop((c,), None)
        if part is None:
            part = transactions.select(needed).clear()
        start, stop = int(bounds[c]), int(bounds[c + 1])
        frames.append(with_reasons(recs.slice(start, stop - start), part, now, similar, items))
    return pl.concat(frames, how="vertical")


def read_train_manifest(artifact_dir: Path) -> dict[str, Any]:
    """Return ``train_manifest.json`` of ``artifact_dir``; raise ``DataError`` when it is not there."""
    path = Path(artifact_dir) / "train_manifest.json"
    if not path.exists():
        raise DataError(f"{path} not found: run `centric train --out {artifact_dir}` first")
    try:
        return dict(json.loads(path.read_text()))
    except ValueError as exc:
        raise ArtifactError(f"{path} is not readable JSON ({exc}); re-run `centric train`") from exc


def load_primary(artifact_dir: Path, manifest: dict[str, Any]) -> Recommender:
    """Load the model that writes recommendations; raise ``ArtifactError`` when it is missing or of other data."""
    name = manifest.get("primary_model", "")
    path = Path(artifact_dir) / "recommender" / f"{name}.json"
    if not path.exists():
        raise ArtifactError(f"{path} not found: the primary model {name!r} was not saved; re-run `centric train`")
    model = load_recommender(path)
    if model.fingerprint_ != manifest.get("data_fingerprint"):
        raise ArtifactError(
            f"{path} was fitted on other data than train_manifest.json says (fingerprint {model.fingerprint_} vs "
            f"{manifest.get('data_fingerprint')}); re-run `centric train`"
        )
    return model


def score_shard(artifact_dir: Path, shard: Shard, transactions: pl.DataFrame) -> dict[str, Any]:
    """Score one shard of a trained artifact directory; write its files; return its ``shard.json`` content.

    ``transactions``: the validated purchase lines the model was trained on (for the reasons: "bought 3 times").
    Raises ``DataError`` when the directory or its item tables are missing or the lines are not the trained ones,
    ``ArtifactError`` for an unusable model.
    """
    artifact_dir = Path(artifact_dir)
    manifest = read_train_manifest(artifact_dir)
    model = load_primary(artifact_dir, manifest)
    until = transactions.get_column(Columns.timestamp).max() if transactions.height else None
    if until is None or until.isoformat() != manifest.get("data_until"):  # type: ignore[union-attr]
        raise DataError(
            f"the transactions end at {until} but {artifact_dir} was trained on data until "
            f"{manifest.get('data_until')}: pass the file `centric train` read (same --schema)"
        )
    k = int(manifest.get("scoring", {}).get("k", 20))
    start, stop = shard.customer_range(model.n_customers)
    recs = score_range(model, start, stop, k)
    ids = pl.Series(Columns.customer_id, model.customers_.external_ids[start:stop], dtype=pl.String)
    lines = transactions.filter(pl.col(Columns.customer_id).cast(pl.String).is_in(ids.implode()))
    similar, items = (_read(artifact_dir / name) for name in ("similar_items.parquet", "items.parquet"))
    recs = reasons_in_chunks(recs, lines, until, similar, items)
    out = artifact_dir / SHARDS_DIR / shard.name
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{RECS_FILE}.{os.getpid()}.tmp"
    recs.write_parquet(tmp)
    os.replace(tmp, out / RECS_FILE)  # a shard file is whole or absent
    info = {
        "shard": shard.index,
        "of": shard.count,
        "customers": [start, stop],
        "customers_total": model.n_customers,
        "primary_model": manifest.get("primary_model"),
        "data_fingerprint": manifest.get("data_fingerprint"),
        "files": {RECS_FILE: {"rows": recs.height, "sha256": file_sha256(out / RECS_FILE)}},
    }
    # the manifest last: a shard counts as arrived only once its file is complete
    (out / f".{SHARD_MANIFEST}.tmp").write_text(json.dumps(info, indent=1))
    os.replace(out / f".{SHARD_MANIFEST}.tmp", out / SHARD_MANIFEST)
    return info


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise DataError(f"{path} not found: run `centric train --out {path.parent}` first")
    return pl.read_parquet(path)
