"""Charts of each page, built from the service documents (templates only place them)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from serving.ui import charts
from serving.ui.charts import Bar, money, number, pct, short_money

STAGE_LABELS = {
    "prospect": "Prospect",
    "new": "New",
    "active": "Active",
    "at_risk": "At risk",
    "lapsed": "Lapsed",
    "reactivated": "Reactivated",
}

SOURCE_LABELS = {
    "personalized": "Personalized",
    "buy_again": "Buy again",
    "similar": "Similar items",
    "cross_sell": "Cross-sell",
    "fallback": "Popular",
}


def source_label(source: str) -> str:
    """Return how a recommendation source reads on a page (``buy_again`` → ``Buy again``; unknown ones tidied)."""
    return SOURCE_LABELS.get(source) or source.replace("_", " ").capitalize()


def overview_charts(snapshot: dict[str, Any] | None, loyalty: dict[str, Any] | None) -> dict[str, Markup]:
    """Return the overview's charts: ``rfm``, ``lifecycle``, ``clv``, ``p_alive``, ``tiers`` (those with data)."""
    out: dict[str, Markup] = {}
    doc = (snapshot or {}).get("dashboard") or {}
    if doc.get("rfm"):
        top = max(c["customers"] for c in doc["rfm"]) or 1
        cells = [
            [(c["customers"] / top, number(c["customers"]), money(c["revenue"])) for c in doc["rfm"] if c["r"] == r]
            for r in range(5, 0, -1)
        ]
        out["rfm"] = charts.grid(
            [f"R{r}" for r in range(5, 0, -1)],
            [f"F{f}" for f in range(1, 6)],
            cells,
            "RFM grid: customers and revenue by recency score (rows) and frequency score (columns)",
            row_title="Recency",
            col_title="Frequency score (1 = least frequent)",
        )
    if doc.get("lifecycle"):
        out["lifecycle"] = charts.hbars(
            [Bar(STAGE_LABELS.get(s["stage"], s["stage"]), s["customers"]) for s in doc["lifecycle"]],
            "Lifecycle funnel: customers per stage",
        )
    if doc.get("clv_histogram"):
        bins = doc["clv_histogram"]
        out["clv"] = charts.vbars(
            [Bar(f"{short_money(b['lo'])}–{short_money(b['hi'])}", b["customers"]) for b in bins],
            "CLV distribution: customers per CLV band",
            rotate=True,
        )
    pmap = doc.get("p_alive_map")
    if pmap:
        f_bands, s_bands = pmap["frequency_bands"], pmap["silence_bands"]
        unit = doc.get("time_unit") or "week"
        cells = [
            [
                (
                    c["p_alive"],
                    pct(c["p_alive"]) if c["customers"] else "",
                    f"{number(c['customers'])} cust." if c["customers"] else "",
                )
                for c in pmap["cells"]
                if c["f"] == fi
            ]
            for fi in range(len(f_bands))
        ]
        out["p_alive"] = charts.grid(
            f_bands,
            s_bands,
            cells,
            f"P(alive) map: mean chance a customer is still active, by repeat purchases and {unit}s since the last",
            row_title="Repeat purchases",
            col_title=f"{unit.capitalize()}s since the last purchase",
            cell_h=40,
        )
    if loyalty and loyalty.get("tiers"):
        out["tiers"] = charts.hbars(
            [Bar(t["tier"], t["members"]) for t in loyalty["tiers"]], "Loyalty members per tier", label_w=90
        )
    return out


def customer_charts(view: dict[str, Any]) -> dict[str, Markup]:
    """Return the customer page's charts: ``timeline`` (spend per month), ``curve`` (P(alive) ahead), ``progress``."""
    out: dict[str, Markup] = {}
    if view["purchases"]:
        months = view["purchases"][-24:]
        out["timeline"] = charts.vbars(
            [Bar(m["month"], m["spend"], money(m["spend"])) for m in months],
            "Purchase history: spend per month",
            money,
            rotate=True,
        )
    if view["curve"]:
        pts = view["curve"]
        out["curve"] = charts.lines(
            [f"+{p['weeks']:.0f}" for p in pts],
            [("P(alive) if no purchase", [p["p_alive"] for p in pts])],
            "P(alive) over the coming weeks without a purchase",
            lambda v: pct(v),
            every=6,
        )
    loyalty = view["loyalty"]
    out["progress"] = charts.progress(loyalty.progress_pct, f"Progress to the next tier: {loyalty.progress_pct}%")
    return out


def loyalty_charts(history: dict[str, Any], summary: dict[str, Any]) -> dict[str, Markup]:
    """Return the loyalty page's charts: ``liability`` over time, monthly ``flow``, ``tiers``."""
    out: dict[str, Markup] = {}
    months = history.get("months") or []
    if months:
        labels = [m["month"] for m in months]
        out["liability"] = charts.lines(
            labels,
            [("Liability (points)", [m["liability_points"] for m in months])],
            "Points liability at each month's end",
            every=max(len(labels) // 6, 1),
        )
        out["flow"] = charts.lines(
            labels,
            [
                ("Earned", [m["earned"] for m in months]),
                ("Redeemed", [m["redeemed"] for m in months]),
                ("Expired", [m["expired"] for m in months]),
            ],
            "Points earned, redeemed and expired per month",
            every=max(len(labels) // 6, 1),
        )
    if summary.get("tiers"):
        out["tiers"] = charts.hbars(
            [Bar(t["tier"], t["members"]) for t in summary["tiers"]], "Members per tier", label_w=90
        )
    moves = {row["month"]: row for row in history.get("tier_movements") or []}
    if months and moves:
        labels = [m["month"] for m in months]
        out["movements"] = charts.lines(
            labels,
            [
                ("Upgrades", [moves.get(m, {}).get("upgrades", 0) for m in labels]),
                ("Downgrades", [moves.get(m, {}).get("downgrades", 0) for m in labels]),
            ],
            "Tier upgrades and downgrades per month (members)",
            every=max(len(labels) // 6, 1),
            styles=(0, 3),
        )
    return out


def unbooked_expiry(history: dict[str, Any], summary: dict[str, Any]) -> int:
    """Return the points the booked ledger still counts that the live liability leaves out: lots past their expiry
    date that ``centric loyalty expire`` has not booked yet (0 when none, or when the history is older than the
    summary's ledger and shows less)."""
    months = history.get("months") or []
    if not months or summary.get("liability_points") is None:
        return 0
    # the monthly running sum of entry amounts is the booked balance (debt is never in the balance)
    return max(int(months[-1]["liability_points"]) - int(summary["liability_points"]), 0)


def tier_check(history: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any] | None:
    """Compare the members per tier that replaying the statements gives with the accounts' tiers today.

    Returns ``{"same": bool, "rows": [{"tier", "accounts", "replayed"}]}``, or ``None`` when either is missing.
    """
    replayed = {t["tier"]: t["members"] for t in history.get("tiers_replayed") or []}
    if not replayed or not summary.get("tiers"):
        return None
    rows = [
        {"tier": t["tier"], "accounts": t["members"], "replayed": replayed.get(t["tier"], 0)} for t in summary["tiers"]
    ]
    return {"same": all(r["accounts"] == r["replayed"] for r in rows), "rows": rows}


def holdout_chart(holdout: dict[str, Any] | None) -> Markup | None:
    """Return the CLV model check (mean holdout purchases, actual vs predicted, by calibration repeat purchases)."""
    rows = (holdout or {}).get("by_frequency") or []
    if not rows:
        return None
    return charts.lines(
        [r["frequency"] for r in rows],
        [("Actual", [r["actual"] for r in rows]), ("Predicted (BG/NBD)", [r["predicted"] for r in rows])],
        "Holdout check: mean purchases in the holdout period by repeat purchases in calibration",
        lambda v: f"{v:.2f}",
    )
