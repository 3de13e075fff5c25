"""Campaign jobs: select an audience from the decisions; train the propensity model on campaign history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from recsys.exceptions import ArtifactError, UnknownOffer
from recsys.nba.audience import select_audience, write_csv


def run_select(
    artifact_dir: Path, offer_id: str, budget: float, out: Path, *, channel: str | None = None
) -> dict[str, Any]:
    """Write the audience of ``offer_id`` (``customer_id``, ``expected_value``, ``p_accept``) as CSV (text cells that
    a spreadsheet would run as formulas neutralised, see ``recsys.nba.audience.write_csv``); return totals.

    Reads ``decisions.parquet`` and ``offers.json`` written by ``centric decide``. Raises ``ArtifactError``
    when they are missing and ``UnknownOffer`` when the offer is not in the catalog.
    """
    artifact_dir = Path(artifact_dir)
    decisions_path, offers_path = artifact_dir / "decisions.parquet", artifact_dir / "offers.json"
    if not decisions_path.exists() or not offers_path.exists():
        raise ArtifactError(
            f"{artifact_dir}: no decisions.parquet/offers.json; run `centric decide --out {artifact_dir}` first"
        )
    known = [o["id"] for o in json.loads(offers_path.read_text())]
    if offer_id not in known:
        raise UnknownOffer(f"offer {offer_id!r} is not in {offers_path}; known offers: {', '.join(known)}")
    audience = select_audience(pl.read_parquet(decisions_path), offer_id, budget, channel)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(audience, out)
    return {
        "offer_id": offer_id,
        "customers": audience.customers.height,
        "budget": budget,
        "expected_redemptions": round(audience.expected_redemptions, 3),
        "expected_value": round(audience.expected_value, 2),
        "out": str(out),
    }
