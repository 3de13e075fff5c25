"""`centric train` tunes the hybrid blend on a bounded, seeded sample of customers (keeps 1M customers in budget)."""

from __future__ import annotations

import pytest

from benchmarks.synthetic_retailer import Spec, generate
from recsys.data import load_transactions
from training.jobs import train as train_job


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory):
    info = generate(Spec(customers=300, items=120, seed=1), tmp_path_factory.mktemp("tx"))
    return load_transactions(info["transactions"]).transactions


def _tune(transactions) -> dict:
    validation, _feedback = train_job._validation_split(transactions, 120.0)
    report, _model = train_job._tune_hybrid(validation, 120.0, "als", True)
    return report


def test_blend_is_tuned_on_every_customer_below_the_cap(transactions) -> None:
    blend = _tune(transactions)
    assert 250 <= blend["validation_customers"] <= 300  # those with a last order of known items


def test_blend_is_tuned_on_a_seeded_sample_above_the_cap(transactions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_job, "TUNE_MAX_CUSTOMERS", 50)
    first = _tune(transactions)
    assert first["validation_customers"] == 50
    assert _tune(transactions) == first  # same sample, same choice
