"""Lifecycle-aware defaults: what an offer with a ``goal`` but no ``eligibility`` is for, and why it is shown.

| goal      | default eligibility                                              | reason shown |
|-----------|------------------------------------------------------------------|--------------|
| convert   | new customers (``prospect``/``new``)                              | welcome offer for a new customer |
| retain    | ``at_risk``/``lapsed`` customers or churn risk ≥ 0.5               | win-back: at risk of leaving |
| grow      | ``active``/``reactivated`` customers with affinity to the targets | cross-sell: close to what they buy |
| recover   | customers with at least one complaint (feedback events)           | service recovery after a complaint |
| reward    | members within 500 points of the next tier                        | reward: close to the next tier |
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GoalDefault:
    """Default eligibility rule (expression text) and reason text for one goal."""

    eligibility: str
    reason: str


GOALS: dict[str, GoalDefault] = {
    "convert": GoalDefault('lifecycle in ["prospect", "new"]', "welcome offer for a new customer"),
    "retain": GoalDefault('lifecycle in ["at_risk", "lapsed"] or churn_risk >= 0.5', "win-back: at risk of leaving"),
    "grow": GoalDefault(
        'lifecycle in ["active", "reactivated"] and affinity > 0', "cross-sell: close to what they buy"
    ),
    "recover": GoalDefault("complaints > 0", "service recovery after a complaint"),
    "reward": GoalDefault("points_to_next_tier > 0 and points_to_next_tier <= 500", "reward: close to the next tier"),
}


def default_for(goal: str) -> GoalDefault:
    """Return the defaults of ``goal``; raises ``KeyError`` for an unknown goal (the catalog loader checks first)."""
    return GOALS[goal]
