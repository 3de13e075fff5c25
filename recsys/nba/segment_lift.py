"""An experiment's lift per segment: RFM segment, lifecycle stage and loyalty tier, each with 95 % intervals.

Within each segment the arms are compared exactly as the whole experiment is (``recsys.nba.experiments.report``:
intention to treat, delta-method interval of the conversion lift, normal interval of the difference). A segment
without customers in the control arm, or without any in a treatment arm, gets no row for that arm.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from recsys.columns import Columns
from recsys.columns import ProfileColumns as P
from recsys.nba.experiments import report
from recsys.nba.fields import NbaFields

DIMENSIONS = {"RFM segment": P.segment, "lifecycle stage": P.lifecycle, "loyalty tier": NbaFields.tier}


def segment_lifts(assignments: pl.DataFrame, outcomes: pl.DataFrame, control: str) -> list[dict[str, Any]]:
    """Return one row per (dimension, segment, treatment arm) with conversion rates, difference and lift + CIs.

    ``assignments``: ``customer_id``, ``arm`` and any of the segment columns of :data:`DIMENSIONS`;
    ``outcomes`` as for ``experiments.report``. Dimensions whose column is absent are left out.
    """
    rows: list[dict[str, Any]] = []
    for dimension, column in DIMENSIONS.items():
        if column not in assignments.columns:
            continue
        for value in sorted(assignments.get_column(column).cast(pl.String).drop_nulls().unique().to_list()):
            part = assignments.filter(pl.col(column).cast(pl.String) == value).select(Columns.customer_id, "arm")
            if part.filter(pl.col("arm") == control).is_empty():
                continue
            results = report(part, outcomes, control)
            base = next(r for r in results if r.arm == control)
            for r in results:
                if r.arm == control:
                    continue
                rows.append(
                    {
                        "dimension": dimension,
                        "segment": value,
                        "arm": r.arm,
                        "customers": r.customers,
                        "control_customers": base.customers,
                        "conversion_rate": r.conversion_rate,
                        "control_rate": base.conversion_rate,
                        "conversion_diff": r.conversion_diff,
                        "conversion_diff_ci": r.conversion_diff_ci,
                        "conversion_lift": r.conversion_lift,
                        "conversion_lift_ci": r.conversion_lift_ci,
                    }
                )
    return rows
