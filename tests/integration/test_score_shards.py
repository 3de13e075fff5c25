"""Sharded batch scoring: `centric score --shard i/n` per customer range, `--engine dask` on a real LocalCluster,
and a publish that takes the shards only when every one has arrived and verifies."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from recsys.data import load_transactions
from recsys.exceptions import DataError
from recsys.store.keys import Keys
from recsys.store.redis_store import RedisSnapshotStore
from training.cli import app
from training.jobs.publish import run_publish
from training.jobs.score import Shard, load_primary, read_train_manifest
from training.jobs.score_engine import score_all
from training.jobs.train import run_train

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CUSTOMERS = 700  # three scoring batches of 256: shards of 3 get one batch each, the last a short one
TRAIN = {"models": ("als",), "k": 6, "tune": False, "similar_min_buyers": 1, "similar_candidate_min_buyers": 1}


def _write_shop(path: Path) -> Path:
    """CUSTOMERS customers, 3 orders each: two favourite groceries re-bought, a snack, one piece of furniture."""
    rng = np.random.default_rng(7)
    rows = []
    for c in range(CUSTOMERS):
        favourite = [f"milk{(c + j) % 9}" for j in range(2)]
        for o in range(3):
            when = T0 + timedelta(days=10 * o + c % 7)
            for item in [*favourite, f"snack{rng.integers(0, 12)}"] + ([f"sofa{c % 5}"] if o == 1 else []):
                rows.append((f"c{c:04d}", item, when, f"c{c}-o{o}", 1.0, 2.5))
    frame = pl.DataFrame(
        rows, schema=["customer_id", "item_id", "timestamp", "order_id", "quantity", "price"], orient="row"
    )
    frame.write_parquet(path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(artifact directory scored in one process, the transactions file it was trained on)."""
    root = tmp_path_factory.mktemp("shards")
    file = _write_shop(root / "tx.parquet")
    run_train(load_transactions(file), root / "artifacts", **TRAIN)  # type: ignore[arg-type]
    return root / "artifacts", file


def _score_shards(artifacts: Path, file: Path, n: int, only: range | None = None) -> None:
    runner = CliRunner()
    for i in only if only is not None else range(n):
        result = runner.invoke(app, ["score", str(artifacts), "--shard", f"{i}/{n}", "--transactions", str(file)])
        assert result.exit_code == 0, result.output


@pytest.fixture
def copy(trained: tuple[Path, Path], tmp_path: Path) -> Path:
    """A private copy of the trained artifact directory (the test adds shards to it)."""
    return Path(shutil.copytree(trained[0], tmp_path / "artifacts"))


def test_shard_ranges_tile_the_customers_on_batch_boundaries() -> None:
    ranges = [Shard(i, 3).customer_range(CUSTOMERS) for i in range(3)]
    assert ranges == [(0, 256), (256, 512), (512, 700)]
    assert [Shard(i, 5).customer_range(10) for i in range(5)] == [(0, 0), (0, 0), (0, 0), (0, 0), (0, 10)]


def test_a_bad_shard_is_refused_with_what_to_write() -> None:
    for text, message in (("3/3", "0 <= i < n"), ("1-4", "is not i/n"), ("0/0", "0 <= i < n")):
        with pytest.raises(ValueError, match=message):
            Shard.parse(text)
    result = CliRunner().invoke(app, ["score", "x", "--shard", "4/4", "--transactions", "t.parquet"])
    assert result.exit_code == 2 and "0 <= i < n" in result.output


def test_shards_together_are_the_single_process_recommendations_byte_for_byte(
    trained: tuple[Path, Path], copy: Path
) -> None:
    _score_shards(copy, trained[1], 3)
    parts = [pl.read_parquet(copy / "shards" / f"{i}-of-3" / "recommendations.parquet") for i in range(3)]
    single = pl.read_parquet(trained[0] / "recommendations.parquet")
    assert pl.concat(parts).equals(single)
    assert [p["customer_id"].n_unique() for p in parts] == [256, 256, CUSTOMERS - 512]


def test_publish_waits_for_every_shard_then_activates_them_as_one_version(
    trained: tuple[Path, Path], copy: Path, redis_client, keys: Keys
) -> None:
    (copy / "recommendations.parquet").unlink()  # as `centric train --engine shards` leaves it
    _score_shards(copy, trained[1], 3, only=range(0, 3, 2))
    with pytest.raises(DataError, match=r"1 of 3 shards have not arrived .*1/3.*centric score --shard 1/3"):
        run_publish(redis_client, keys, copy)
    assert RedisSnapshotStore(redis_client, keys).active_version() is None  # nothing half-published
    _score_shards(copy, trained[1], 3, only=range(1, 2))
    summary = run_publish(redis_client, keys, copy)
    assert "shards/1-of-3/recommendations.parquet" in summary["files"]
    assert summary["counts"]["customers"] == CUSTOMERS
    assert RedisSnapshotStore(redis_client, keys).active_version() == summary["version"]


def test_a_stale_or_changed_shard_is_refused(trained: tuple[Path, Path], copy: Path) -> None:
    from training.jobs.score_shards import merged

    _score_shards(copy, trained[1], 2)
    manifest_path = copy / "shards" / "1-of-2" / "shard.json"
    info = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**info, "data_fingerprint": "an-earlier-train"}))
    with pytest.raises(DataError, match="shard 1/2 .* other data"):
        merged(copy)
    manifest_path.write_text(json.dumps(info))
    pl.read_parquet(copy / "shards" / "0-of-2" / "recommendations.parquet").head(5).write_parquet(
        copy / "shards" / "0-of-2" / "recommendations.parquet"
    )
    with pytest.raises(DataError, match="shard 0/2 .* changed since it was scored"):
        merged(copy)


def test_scoring_on_a_dask_local_cluster_equals_one_process(trained: tuple[Path, Path]) -> None:
    pytest.importorskip("distributed")
    model = load_primary(trained[0], read_train_manifest(trained[0]))
    local = score_all(model, 6)
    on_dask = score_all(model, 6, engine="dask", workers=2)  # two worker processes: the model travels pickled
    assert local is not None and on_dask is not None
    assert on_dask.equals(local)


def test_a_new_train_drops_the_shards_of_the_last_one(tmp_path: Path) -> None:
    file = _write_shop(tmp_path / "tx.parquet")
    result = load_transactions(file)
    out = tmp_path / "artifacts"
    run_train(result, out, engine="shards", **{**TRAIN, "models": ("buy_again",), "primary": "hybrid"})  # type: ignore[arg-type]
    assert not (out / "recommendations.parquet").exists()
    assert read_train_manifest(out)["scoring"] == {"k": 6, "engine": "shards"}
    _score_shards(out, file, 2)
    run_train(result, out, **{**TRAIN, "models": ("buy_again",), "primary": "hybrid"})  # type: ignore[arg-type]
    assert not (out / "shards").exists() and (out / "recommendations.parquet").exists()


def test_reasons_in_chunks_are_the_reasons_of_one_pass(trained: tuple[Path, Path]) -> None:
    from training.jobs.score import reasons_in_chunks, score_range
    from training.jobs.train_outputs import with_reasons

    artifacts, file = trained
    model = load_primary(artifacts, read_train_manifest(artifacts))
    recs, lines = score_range(model, 0, model.n_customers, 6), load_transactions(file).transactions
    until = lines.get_column("timestamp").max()
    similar, items = (pl.read_parquet(artifacts / name) for name in ("similar_items.parquet", "items.parquet"))
    whole = with_reasons(recs, lines, until, similar, items)
    assert reasons_in_chunks(recs, lines, until, similar, items, chunk=97).equals(whole)  # 8 chunks, uneven
    assert whole.equals(pl.read_parquet(artifacts / "recommendations.parquet"))
