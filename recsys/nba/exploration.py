"""Exploration among a customer's candidate offers, with the probability of what was shown.

The arbitration's published decisions, after the live contact policy (``recsys.nba.policy.live_offers``), are the
**candidates**. A policy picks a slate of up to ``k`` of them and says, for every offer shown, the probability that
it was in the slate (its marginal inclusion probability). That probability travels with the impression event, so a
later off-policy evaluation (``recsys.nba.off_policy``) can reweight what was logged.

Policies (configured per channel, :func:`parse_config`):

* ``greedy`` (the default; exploration off) — the candidates in rank order, as served before exploration existed;
  every shown offer has probability 1;
* ``epsilon_greedy`` — with probability ``1 − epsilon`` the greedy slate, otherwise ``k`` candidates drawn uniformly
  without replacement (shown in rank order). Inclusion probability, exactly:
  ``(1 − ε)·[offer in the greedy slate] + ε·k/n`` for ``n`` candidates;
* ``thompson`` — Thompson sampling on the calibrated propensities: each candidate's P(accept) is drawn from
  ``Beta(p̂·s, (1 − p̂)·s)`` (``s`` = ``strength``, the number of observations the calibrated p̂ counts as), the
  value per acceptance is the decision's ``expected_value / p_accept``, and the slate is the ``k`` best sampled
  values. Its inclusion probabilities have no closed form: they are estimated from ``draws`` further samples (as
  Open Bandit Pipeline does for its Thompson policies) from a generator seeded with :data:`ESTIMATE_SEED` alone, so
  the same candidates always log the same probability (whatever the serving generator's state) and an off-policy
  evaluation recomputes exactly what was logged; floored at ``1 / (draws + 1)`` (the shown offer was drawn, so its
  probability is not zero).

Randomness comes from a ``numpy.random.Generator`` the caller passes (the service seeds one per process from its
settings; tests pass a seeded one), so every choice is reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.exceptions import ConfigError
from recsys.store.base import OfferDecision

POLICIES = ("greedy", "epsilon_greedy", "thompson")
GREEDY = "greedy"
ESTIMATE_SEED = 0  # the Thompson inclusion estimate's own seed: a probability is a function of the candidates


@dataclass(frozen=True)
class ExplorationPolicy:
    """How one channel chooses among its candidates (see the module docstring)."""

    kind: str = GREEDY
    epsilon: float = 0.1
    strength: float = 50.0
    draws: int = 200

    def __post_init__(self) -> None:
        if self.kind not in POLICIES:
            raise ConfigError(f"exploration policy must be one of {list(POLICIES)}, got {self.kind!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError(f"exploration epsilon must be in [0, 1], got {self.epsilon}")
        if self.strength <= 0 or self.draws < 1:
            raise ConfigError("exploration strength must be > 0 and draws ≥ 1")

    @property
    def label(self) -> str:
        """What an impression logs as its ``policy``: the kind and its parameter (``epsilon_greedy:0.1``)."""
        if self.kind == "epsilon_greedy":
            return f"epsilon_greedy:{self.epsilon:g}"
        if self.kind == "thompson":
            return f"thompson:{self.strength:g}"
        return GREEDY

    @classmethod
    def from_label(cls, label: str) -> ExplorationPolicy:
        """Return the policy an impression's ``policy`` label names (the inverse of :attr:`label`)."""
        kind, _, value = label.partition(":")
        if kind == "epsilon_greedy":
            return cls(kind, epsilon=float(value or 0.1))
        if kind == "thompson":
            return cls(kind, strength=float(value or 50.0))
        return cls(kind)


GREEDY_POLICY = ExplorationPolicy()


def parse_config(text: str | Mapping[str, Any] | None) -> dict[str, ExplorationPolicy]:
    """Return the per-channel policies of a configuration such as
    ``{"app": {"policy": "epsilon_greedy", "epsilon": 0.1}, "email": {"policy": "thompson"}}`` (JSON text or a
    mapping); a channel not named is greedy. Raises ``ConfigError`` naming the channel and the problem."""
    if not text:
        return {}
    try:
        raw = json.loads(text) if isinstance(text, str) else dict(text)
    except ValueError as exc:
        raise ConfigError(f"exploration configuration is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError('exploration configuration must map channels to policies: {"app": {"policy": …}}')
    out = {}
    for channel, spec in raw.items():
        if isinstance(spec, str):
            spec = {"policy": spec}
        if not isinstance(spec, dict):
            raise ConfigError(f"exploration for channel {channel!r}: expected an object, got {spec!r}")
        unknown = set(spec) - {"policy", "epsilon", "strength", "draws"}
        if unknown:
            raise ConfigError(f"exploration for channel {channel!r}: unknown field(s) {sorted(unknown)}")
        try:
            out[str(channel)] = ExplorationPolicy(
                str(spec.get("policy", GREEDY)),
                float(spec.get("epsilon", 0.1)),
                float(spec.get("strength", 50.0)),
                int(spec.get("draws", 200)),
            )
        except ConfigError as exc:
            raise ConfigError(f"exploration for channel {channel!r}: {exc}") from None
    return out


@dataclass(frozen=True)
class Shown:
    """One offer of a slate and the probability that the policy included it."""

    decision: OfferDecision
    probability: float


def _values(candidates: Sequence[OfferDecision]) -> tuple[np.ndarray, np.ndarray]:
    p = np.clip(np.asarray([c.p_accept for c in candidates], dtype=np.float64), 1e-6, 1 - 1e-6)
    ev = np.asarray([c.expected_value for c in candidates], dtype=np.float64)
    return p, ev / p


def _thompson_slates(p: np.ndarray, value: np.ndarray, k: int, strength: float, draws: int, rng: np.random.Generator):
    sampled = rng.beta(p * strength, (1 - p) * strength, size=(draws, len(p))) * value
    return np.argsort(-sampled, axis=1, kind="stable")[:, :k]


def inclusion_probabilities(
    candidates: Sequence[OfferDecision], k: int, policy: ExplorationPolicy, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Return, per candidate (in rank order), the probability that ``policy`` puts it into a slate of ``k``.

    Thompson's are estimated from draws of ``rng``, by default a generator seeded with :data:`ESTIMATE_SEED` (the
    deterministic estimate the service logs).
    """
    n = len(candidates)
    size = min(k, n)
    greedy = (np.arange(n) < size).astype(np.float64)
    if policy.kind == GREEDY or n == 0 or size == n:
        return greedy if n else np.zeros(0)
    if policy.kind == "epsilon_greedy":
        return (1 - policy.epsilon) * greedy + policy.epsilon * size / n
    p, value = _values(candidates)
    rng = rng or np.random.default_rng(ESTIMATE_SEED)
    slates = _thompson_slates(p, value, size, policy.strength, policy.draws, rng)
    counts = np.bincount(slates.ravel(), minlength=n).astype(np.float64)
    return np.maximum(counts / policy.draws, 1.0 / (policy.draws + 1))


def choose(
    candidates: Sequence[OfferDecision], k: int, policy: ExplorationPolicy, rng: np.random.Generator
) -> list[Shown]:
    """Return the slate (at most ``k`` offers, in rank order) and each offer's inclusion probability.

    ``candidates`` are in rank order (as ``live_offers`` returns them). With the greedy policy this is exactly the
    first ``k`` candidates, each with probability 1, and ``rng`` is not touched.
    """
    ranked = sorted(candidates, key=lambda c: (c.rank, c.offer_id))
    size = min(k, len(ranked))
    if policy.kind == GREEDY or size == len(ranked):
        return [Shown(c, 1.0) for c in ranked[:size]]
    if policy.kind == "epsilon_greedy":
        picked = (
            np.sort(rng.choice(len(ranked), size=size, replace=False))
            if rng.random() < policy.epsilon
            else np.arange(size)
        )
    else:
        p, value = _values(ranked)
        picked = np.sort(_thompson_slates(p, value, size, policy.strength, 1, rng)[0])
    probs = inclusion_probabilities(ranked, size, policy)  # never from ``rng``: the same candidates, the same p
    return [Shown(ranked[i], float(probs[i])) for i in picked]


@dataclass
class Explorer:
    """The per-channel policies of one process and its random generator (one per process: choices stay seeded)."""

    policies: Mapping[str, ExplorationPolicy]
    rng: np.random.Generator

    @classmethod
    def from_config(cls, config: str | Mapping[str, Any] | None, seed: int | None = None) -> Explorer:
        """Return an explorer for a configuration (:func:`parse_config`); raises ``ConfigError``."""
        return cls(parse_config(config), np.random.default_rng(seed))

    def policy(self, channel: str) -> ExplorationPolicy:
        """Return the channel's policy (greedy when the configuration does not name the channel)."""
        return self.policies.get(channel, GREEDY_POLICY)
