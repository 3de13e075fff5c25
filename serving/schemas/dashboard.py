"""Schemas of the dashboard endpoints: the overview's aggregates and the loyalty program's figures over time.

Money is in currency units, points are whole numbers, times are ISO 8601 UTC. Parts a snapshot was published
without (older publishers, profiles lacking a column) are empty lists or ``null``, never missing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RfmCell(BaseModel):
    """One cell of the RFM grid: recency score × frequency score (1–5, 5 best)."""

    r: int = Field(ge=1, le=5)
    f: int = Field(ge=1, le=5)
    customers: int
    revenue: float = Field(description="Total spend of the cell's customers")


class LifecycleStage(BaseModel):
    """Customers in one lifecycle stage."""

    stage: str = Field(description="prospect | new | active | at_risk | lapsed | reactivated")
    customers: int


class SegmentRow(BaseModel):
    """Customers, revenue and predicted CLV of one RFM segment."""

    segment: str
    customers: int
    revenue: float
    clv: float


class ClvBin(BaseModel):
    """One band of the CLV histogram, ``[lo, hi)`` in currency units."""

    lo: float
    hi: float
    customers: int
    clv: float = Field(description="Sum of the band's predicted CLV")


class PAliveCell(BaseModel):
    """Mean P(alive) of the customers in one frequency band × silence band (indices into the band labels)."""

    f: int
    s: int
    customers: int
    p_alive: float | None = Field(description="null when the cell has no customers")


class PAliveMap(BaseModel):
    """P(alive) by repeat purchases (rows) and time since the last purchase (columns, in ``time_unit``)."""

    frequency_bands: list[str]
    silence_bands: list[str]
    cells: list[PAliveCell]


class HoldoutRow(BaseModel):
    """Mean purchases in the holdout period, actual vs BG/NBD, for one band of calibration repeat purchases."""

    frequency: str
    customers: int
    actual: float
    predicted: float


class Holdout(BaseModel):
    """The CLV model's check on a holdout period."""

    model_config = ConfigDict(extra="allow")
    holdout_end: str | None = None
    holdout_length: float | None = None
    customers: int | None = None
    mae_per_customer: float | None = None
    actual_total: float | None = None
    predicted_total: float | None = None
    aggregate_error_pct: float | None = None
    by_frequency: list[HoldoutRow] = []


class EvaluationRow(BaseModel):
    """One model's offline metrics at 10 (null where the evaluation did not compute one)."""

    model_config = ConfigDict(populate_by_name=True)
    model: str
    ndcg_at_10: float | None = Field(None, alias="ndcg@10")
    recall_at_10: float | None = Field(None, alias="recall@10")
    hit_rate_at_10: float | None = Field(None, alias="hit_rate@10")
    repeat_recall_at_10: float | None = Field(None, alias="repeat_recall@10")
    explore_recall_at_10: float | None = Field(None, alias="explore_recall@10")
    coverage_at_10: float | None = Field(None, alias="coverage@10")


class Evaluation(BaseModel):
    """The latest evaluation table: every model × metric, best NDCG@10 first."""

    protocol: str
    metrics: list[str]
    models: list[EvaluationRow]


class BgNbdParams(BaseModel):
    """The fitted BG/NBD parameters (for the P(alive) curve of a customer)."""

    r: float
    alpha: float
    a: float
    b: float


class Training(BaseModel):
    """What trained the snapshot's models."""

    trained_at: str | None = None
    primary_model: str | None = None
    sources: dict[str, int] = Field(default_factory=dict, description="Recommendations per source")
    counts: dict[str, int] = Field(default_factory=dict)


class DashboardDocument(BaseModel):
    """The aggregates computed when the snapshot was published (``recsys.analytics.dashboard``)."""

    model_config = ConfigDict(extra="allow")
    document_version: int
    customers: int
    revenue: float | None
    clv_total: float | None = Field(description="Predicted 12-month CLV of every customer")
    p_alive_mean: float | None
    data_until: str | None = Field(description="The last purchase in the training data")
    rfm: list[RfmCell]
    lifecycle: list[LifecycleStage]
    segments: list[SegmentRow]
    clv_histogram: list[ClvBin]
    p_alive_map: PAliveMap | None
    as_of: str | None = None
    holdout: Holdout | None = None
    evaluation: Evaluation | None = None
    bgnbd: BgNbdParams | None = None
    time_unit: str | None = None
    training: Training | None = None


class ExperimentArm(BaseModel):
    """One arm of a published experiment."""

    name: str
    weight: float
    holdout: bool


class Experiment(BaseModel):
    """An experiment the snapshot's decisions assigned arms by."""

    model_config = ConfigDict(extra="allow")
    id: str
    arms: list[ExperimentArm]
    offers: list[str] = []


class SnapshotOverview(BaseModel):
    """The active snapshot: version, when it was published, its aggregates."""

    version: str
    published_at: str
    age_hours: float
    dashboard: DashboardDocument | None = Field(description="null when published without dashboard aggregates")
    experiments: list[Experiment]


class TierMembers(BaseModel):
    """Members in one tier."""

    tier: str
    members: int


class LoyaltySummary(BaseModel):
    """Members per tier, the points liability and points expiring within 30 days (at most 15 s old)."""

    members: int
    tiers: list[TierMembers]
    liability_points: int
    liability_value: float = Field(description="What the liability is worth, in currency units")
    expiring_30d_points: int
    expiring_30d_value: float
    debt_points: int = Field(description="Points reversed after they were spent, owed by members")
    computed_at: str


class RunStage(BaseModel):
    """One stage of a pipeline run."""

    name: str
    status: str = Field(description="pending | running | done | skipped | failed | refused | not_run")
    seconds: float | None = None


class PipelineRun(BaseModel):
    """One run of ``centric pipeline run`` (from its report; docs/pipeline.md)."""

    run_id: str
    status: str | None = Field(description="running | succeeded | nothing_to_do | failed | refused | interrupted")
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    snapshot: dict[str, str | None] | None = Field(None, description="Active version before and after the run")
    error: dict[str, str] | None = Field(None, description="``stage`` and ``message`` of a failed run")
    stages: list[RunStage]


class OverviewPublic(BaseModel):
    """Everything the dashboard's overview shows."""

    snapshot: SnapshotOverview | None = Field(description="null when nothing is published yet")
    loyalty: LoyaltySummary | None
    runs: list[PipelineRun] = Field(description="The last pipeline runs, newest first")


class MonthFlow(BaseModel):
    """Points moved in one month (UTC) by every member, and the liability at its end."""

    month: str = Field(description="YYYY-MM")
    earned: int = Field(description="Earned on orders and granted")
    redeemed: int
    reversed: int = Field(description="Taken back by returns")
    expired: int
    liability_points: int = Field(description="Outstanding points at the month's end")


class TierMove(BaseModel):
    """Members who moved from one tier to another in a month."""

    model_config = ConfigDict(populate_by_name=True)
    from_tier: str = Field(alias="from")
    to_tier: str = Field(alias="to")
    customers: int


class MonthTierMovements(BaseModel):
    """Tier upgrades and downgrades in one month, replayed from the ledger statements."""

    month: str = Field(description="YYYY-MM")
    upgrades: int
    downgrades: int
    moves: list[TierMove]


class LoyaltyFiguresPublic(BaseModel):
    """The loyalty program over time: monthly points flow and liability, tier movements, members per tier."""

    summary: LoyaltySummary
    months: list[MonthFlow] = Field(description="The last 24 months with ledger entries, oldest first")
    tier_movements: list[MonthTierMovements] = Field(description="Months of ``months`` in which a member moved")
    tiers_replayed: list[TierMembers] = Field(
        description="Members per tier that replaying the statements gives today (compare with summary.tiers)"
    )
    history_computed_at: str = Field(description="When the monthly figures were computed (at most 5 min old)")


def as_loyalty_figures(summary: dict[str, Any], history: dict[str, Any]) -> LoyaltyFiguresPublic:
    """Return the loyalty figures of a summary and a history document (``serving.services.dashboard``)."""
    return LoyaltyFiguresPublic(
        summary=LoyaltySummary.model_validate(summary),
        months=[MonthFlow.model_validate(m) for m in history["months"]],
        tier_movements=[MonthTierMovements.model_validate(m) for m in history["tier_movements"]],
        tiers_replayed=[TierMembers.model_validate(t) for t in history["tiers_replayed"]],
        history_computed_at=history["computed_at"],
    )
