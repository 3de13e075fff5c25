"""Purchase matrix: weightings computed by hand on a tiny frame, id maps, dropped lines."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from recsys.exceptions import DataError
from recsys.ids import IdMap
from recsys.matrix import build_matrix

T0 = datetime(2024, 1, 31, tzinfo=UTC)


def _frame(rows: list[tuple[str, str, float, int]]) -> pl.DataFrame:
    """rows: (customer, item, quantity, days before T0)."""
    return pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "quantity": [float(r[2]) for r in rows],
            "timestamp": [T0 - timedelta(days=r[3]) for r in rows],
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )


@pytest.fixture
def lines() -> pl.DataFrame:
    return _frame(
        [
            ("c1", "milk", 2, 0),
            ("c1", "milk", 1, 10),
            ("c1", "bread", 1, 10),
            ("c2", "milk", 5, 20),
            ("c2", "eggs", 1, 0),
            ("c3", "eggs", 3, 30),
        ]
    )


def _dense(pm) -> dict[tuple[str, str], float]:
    m = pm.matrix.toarray()
    return {
        (c, i): float(m[r, k])
        for r, c in enumerate(pm.customers.external_ids)
        for k, i in enumerate(pm.items.external_ids)
        if m[r, k] != 0
    }


def test_count_is_number_of_lines_by_default_and_quantity_on_request(lines: pl.DataFrame) -> None:
    by_lines = _dense(build_matrix(lines, weighting="count"))
    assert by_lines == {("c1", "milk"): 2, ("c1", "bread"): 1, ("c2", "milk"): 1, ("c2", "eggs"): 1, ("c3", "eggs"): 1}
    by_qty = _dense(build_matrix(lines, weighting="count", count_by="quantity"))
    assert by_qty[("c1", "milk")] == 3 and by_qty[("c2", "milk")] == 5 and by_qty[("c3", "eggs")] == 3


def test_matrix_is_float32_csr_with_sorted_id_maps(lines: pl.DataFrame) -> None:
    pm = build_matrix(lines)
    assert pm.matrix.format == "csr" and pm.matrix.dtype == np.float32
    assert pm.customers.external_ids == ("c1", "c2", "c3")
    assert pm.items.external_ids == ("bread", "eggs", "milk")
    assert pm.shape == (3, 3) and pm.nnz == 5 and pm.dropped_lines == 0


def test_binary_and_log1p(lines: pl.DataFrame) -> None:
    assert set(_dense(build_matrix(lines, weighting="binary")).values()) == {1.0}
    logged = _dense(build_matrix(lines, weighting="log1p"))
    assert logged[("c1", "milk")] == pytest.approx(math.log(3))
    assert logged[("c1", "bread")] == pytest.approx(math.log(2))


def test_tfidf_uses_smooth_idf_so_common_items_weigh_less(lines: pl.DataFrame) -> None:
    got = _dense(build_matrix(lines, weighting="tfidf"))
    n = 3
    idf = {"milk": math.log((1 + n) / (1 + 2)) + 1, "bread": math.log((1 + n) / (1 + 1)) + 1}
    assert got[("c1", "milk")] == pytest.approx(2 * idf["milk"], rel=1e-6)
    assert got[("c1", "bread")] == pytest.approx(1 * idf["bread"], rel=1e-6)


def test_bm25_matches_hand_computation(lines: pl.DataFrame) -> None:
    k1, b = 1.2, 0.75
    got = _dense(build_matrix(lines, weighting="bm25", k1=k1, b=b))
    row_len = {"c1": 3, "c2": 2, "c3": 1}
    mean = 2.0
    idf_milk = math.log(4 / 3) + 1
    norm = (1 - b) + b * row_len["c1"] / mean
    assert got[("c1", "milk")] == pytest.approx(idf_milk * 2 * (k1 + 1) / (2 + k1 * norm), rel=1e-6)
    # b = 0 switches length normalisation off: equal counts and idf give equal weights across customers.
    flat = _dense(build_matrix(lines, weighting="bm25", k1=k1, b=0.0))
    assert flat[("c2", "eggs")] == pytest.approx(flat[("c3", "eggs")])


def test_decay_halves_weight_every_half_life(lines: pl.DataFrame) -> None:
    got = _dense(build_matrix(lines, weighting="decay", half_life_days=10, now=T0))
    assert got[("c1", "milk")] == pytest.approx(1.0 + 0.5)
    assert got[("c2", "milk")] == pytest.approx(0.25)
    assert got[("c3", "eggs")] == pytest.approx(0.125)
    # Without ``now`` the newest line in the frame is the reference (here T0 as well).
    assert _dense(build_matrix(lines, weighting="decay", half_life_days=10)) == pytest.approx(got)


def test_decay_needs_half_life_and_tz_aware_now(lines: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        build_matrix(lines, weighting="decay")
    with pytest.raises(ValueError, match="timezone"):
        build_matrix(lines, weighting="decay", half_life_days=5, now=datetime(2024, 1, 1))


def test_unknown_weighting_and_missing_column_raise(lines: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown weighting"):
        build_matrix(lines, weighting="magic")
    with pytest.raises(DataError, match="quantity"):
        build_matrix(lines.drop("quantity"), count_by="quantity")


def test_given_id_maps_fix_shape_and_drop_unknown_lines(lines: pl.DataFrame) -> None:
    customers = IdMap(("c2", "c1", "c9"))
    items = IdMap(("milk", "bread"))
    pm = build_matrix(lines, customers=customers, items=items)
    assert pm.shape == (3, 2)
    # c3 (1 line) is unknown; c2's eggs line is an unknown item.
    assert pm.dropped_lines == 2 and pm.unknown_customers == 1 and pm.unknown_items == 1
    dense = pm.matrix.toarray()
    assert dense[1, 0] == 2 and dense[1, 1] == 1 and dense[0, 0] == 1
    assert dense[2].sum() == 0


def test_empty_frame_gives_empty_matrix() -> None:
    pm = build_matrix(_frame([]))
    assert pm.shape == (0, 0) and pm.nnz == 0


def test_idmap_to_internal_vectorised_path_keeps_contract() -> None:
    m = IdMap(("b", "a", "ç"))
    assert m.to_internal(["a", "ç", "b"]).tolist() == [1, 2, 0]
    assert m.to_internal(pl.Series(["x", "a"]), strict=False).tolist() == [-1, 1]
    with pytest.raises(KeyError, match="zz"):
        m.to_internal(["zz"])


def test_lines_with_null_ids_are_dropped_and_counted(lines: pl.DataFrame) -> None:
    with_null = pl.concat([lines, lines.head(1).with_columns(pl.lit(None, dtype=pl.String).alias("item_id"))])
    pm = build_matrix(with_null, weighting="count")
    assert pm.dropped_lines == 1
    assert pm.matrix.sum() == lines.height
