"""The campaign-select and experiment-report jobs, as the CLI runs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from recsys.exceptions import NotFound, UnknownOffer
from training.cli import app
from training.jobs.campaign import run_select
from training.jobs.decide import run_decide
from training.jobs.report import events_frame, run_experiment_report

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("artifacts")
    rng = np.random.default_rng(5)
    n = 800
    pl.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "lifecycle": rng.choice(["new", "active", "at_risk"], n).tolist(),
            "clv": rng.gamma(2.0, 200.0, n),
            "p_alive": rng.uniform(0, 1, n),
            "churn_risk": rng.uniform(0, 1, n),
        }
    ).write_parquet(out / "profiles.parquet")
    run_decide(out, ROOT / "examples" / "offers.toml")
    return out


def test_campaign_select_writes_the_best_customers_within_budget(artifacts: Path, tmp_path: Path) -> None:
    summary = run_select(artifacts, "winback15", 10, tmp_path / "aud.csv")
    audience = pl.read_csv(tmp_path / "aud.csv", schema_overrides={"customer_id": pl.String})
    assert audience.height == summary["customers"] > 0
    assert audience.get_column("p_accept").sum() <= 10 + 1e-6
    assert audience.get_column("expected_value").is_sorted(descending=True)
    with pytest.raises(UnknownOffer, match="known offers"):
        run_select(artifacts, "nope", 10, tmp_path / "x.csv")


def test_cli_errors_are_one_line_messages(artifacts: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "campaign",
            "select",
            "--offer",
            "nope",
            "--budget",
            "3",
            "--artifacts",
            str(artifacts),
            "--out",
            str(tmp_path / "a.csv"),
        ],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[offer]]\nid = "x"\nkind = "percent_discount"\nvalue = 1\neligibility = "__class__ > 1"\n')
    result = CliRunner().invoke(app, ["decide", "--offers", str(bad), "--out", str(artifacts)])
    assert result.exit_code == 2 and "names starting with '_'" in result.output


def test_experiment_report_counts_the_whole_population_per_arm(artifacts: Path) -> None:
    customers = pl.read_parquet(artifacts / "profiles.parquet").get_column("customer_id").to_list()
    events = events_frame([{"type": "purchase", "customer_id": c, "price": 10, "quantity": 1} for c in customers[::4]])
    result = run_experiment_report("nba-vs-holdout", artifacts, events)
    arms = {a["arm"]: a for a in result["arms"]}
    assert set(arms) == {"nba", "holdout"} and result["control"] == "holdout"
    assert sum(a["customers"] for a in arms.values()) == len(customers)
    assert sum(a["conversions"] for a in arms.values()) == len(customers[::4])
    assert arms["nba"]["conversion_diff_ci"][0] < arms["nba"]["conversion_diff"] < arms["nba"]["conversion_diff_ci"][1]
    with pytest.raises(NotFound):
        run_experiment_report("missing", artifacts, events)
