"""`centric train` end to end on a small standard CSV (needs the data loader of ``recsys.data``)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from training.cli import app


def _csv(path: Path) -> Path:
    lines = ["customer_id,item_id,timestamp,quantity,price,order_id"]
    for c in range(25):
        for o in range(3):
            day = 1 + 7 * o + c % 5
            for item in (f"i{c % 4}", f"i{(c + 1) % 4}", f"j{(c + o) % 6}"):
                lines.append(f"c{c},{item},2024-03-{day:02d}T10:00:00Z,1,2.50,c{c}-{o}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_centric_train_writes_artifacts_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--transactions",
            str(_csv(tmp_path / "tx.csv")),
            "--out",
            str(out),
            "--k",
            "5",
            "--models",
            "buy_again,als",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "recommendations" in result.output
    manifest = json.loads((out / "train_manifest.json").read_text())
    assert manifest["counts"]["customers"] == 25
    assert (out / "recommendations.parquet").exists() and (out / "recommender" / "als.json").exists()


def test_centric_train_rejects_an_unknown_model_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["train", "--transactions", str(_csv(tmp_path / "tx.csv")), "--out", str(tmp_path / "o"), "--models", "nope"],
    )
    assert result.exit_code == 2
    assert "unknown model(s) nope" in result.output
    assert "Traceback" not in result.output


def test_centric_train_takes_the_categories_of_a_catalog(tmp_path: Path) -> None:
    import polars as pl

    catalog = tmp_path / "catalog.csv"
    rows = [f"i{n},item {n},dairy,1.00" for n in range(4)] + [f"j{n},item j{n},bakery,2.00" for n in range(6)]
    catalog.write_text("item_id,name,category,price\n" + "\n".join(rows) + "\n")
    out = tmp_path / "artifacts"
    args = ["train", "--transactions", str(_csv(tmp_path / "tx.csv")), "--out", str(out), "--catalog", str(catalog)]
    result = CliRunner().invoke(app, [*args, "--primary", "hybrid", "--no-tune", "--models", "popularity"])
    assert result.exit_code == 0, result.output
    items = pl.read_parquet(out / "items.parquet")
    assert dict(items.select("item_id", "category").iter_rows())["j3"] == "bakery"
    assert set(items.get_column("category")) == {"dairy", "bakery"}
