"""Exploration among candidate offers: greedy is today's answer, the logged probabilities are the real ones."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from recsys.exceptions import ConfigError
from recsys.nba.exploration import ExplorationPolicy, Explorer, choose, inclusion_probabilities, parse_config
from recsys.store.base import OfferDecision


def candidates(ps: list[float]) -> list[OfferDecision]:
    return [
        OfferDecision(
            customer_id="c",
            channel="app",
            offer_id=f"o{i}",
            rank=i + 1,
            expected_value=10.0 * p,
            p_accept=p,
            reason="r",
            arm="nba",
        )
        for i, p in enumerate(ps)
    ]


def test_greedy_serves_the_first_k_with_probability_one_and_draws_nothing() -> None:
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    shown = choose(candidates([0.3, 0.2, 0.1, 0.05]), 2, ExplorationPolicy(), rng)
    assert [(s.decision.offer_id, s.probability) for s in shown] == [("o0", 1.0), ("o1", 1.0)]
    assert rng.bit_generator.state == state


@pytest.mark.parametrize(
    "policy", [ExplorationPolicy("epsilon_greedy", epsilon=0.3), ExplorationPolicy("thompson", strength=20)]
)
def test_logged_probabilities_match_how_often_each_offer_is_shown(policy: ExplorationPolicy) -> None:
    offers = candidates([0.30, 0.25, 0.10, 0.05, 0.02])
    rng = np.random.default_rng(7)
    counts: Counter[str] = Counter()
    logged: dict[str, float] = {}
    runs = 4000
    for _ in range(runs):
        for s in choose(offers, 2, policy, rng):
            counts[s.decision.offer_id] += 1
            logged[s.decision.offer_id] = s.probability
    for offer_id, p in logged.items():
        assert counts[offer_id] / runs == pytest.approx(p, abs=0.03)
    assert sum(inclusion_probabilities(offers, 2, policy, np.random.default_rng(0))) == pytest.approx(2.0, abs=0.05)


def test_epsilon_greedy_probabilities_are_the_closed_form() -> None:
    p = inclusion_probabilities(candidates([0.3, 0.2, 0.1, 0.05]), 1, ExplorationPolicy("epsilon_greedy", 0.2))
    np.testing.assert_allclose(p, [0.8 + 0.2 / 4, 0.05, 0.05, 0.05])


def test_the_same_seed_gives_the_same_choices() -> None:
    offers = candidates([0.3, 0.2, 0.1, 0.05])
    policy = ExplorationPolicy("thompson")

    def run(seed: int) -> list[list[str]]:
        rng = np.random.default_rng(seed)
        return [[s.decision.offer_id for s in choose(offers, 2, policy, rng)] for _ in range(20)]

    assert run(5) == run(5)
    assert len({tuple(x) for x in run(5)}) > 1


def test_configuration_is_per_channel_and_errors_name_the_channel() -> None:
    explorer = Explorer.from_config('{"app": {"policy": "epsilon_greedy", "epsilon": 0.25}, "email": "thompson"}', 1)
    assert explorer.policy("app").label == "epsilon_greedy:0.25"
    assert explorer.policy("email").kind == "thompson" and explorer.policy("web").kind == "greedy"
    assert ExplorationPolicy.from_label("epsilon_greedy:0.25") == explorer.policy("app")
    assert parse_config("") == {}
    with pytest.raises(ConfigError, match="channel 'app'.*epsilon must be in"):
        parse_config('{"app": {"policy": "epsilon_greedy", "epsilon": 2}}')
    with pytest.raises(ConfigError, match="channel 'push'.*unknown field"):
        parse_config('{"push": {"policy": "thompson", "temperature": 1}}')
    with pytest.raises(ConfigError, match="not JSON"):
        parse_config("{app")


def test_thompson_logs_the_same_probability_for_the_same_candidates_whatever_the_generator_state() -> None:
    # the logged p_shown is an estimate: it must be a function of the candidates, not of the process's generator
    # state (two requests with the same candidates log the same probability, and OPE can reproduce it)
    offers = candidates([0.30, 0.25, 0.10, 0.05, 0.02])
    policy = ExplorationPolicy("thompson", strength=20)
    expected = inclusion_probabilities(offers, 2, policy)
    logged: dict[str, set[float]] = {}
    rng = np.random.default_rng(11)
    for _ in range(40):
        for s in choose(offers, 2, policy, rng):
            logged.setdefault(s.decision.offer_id, set()).add(s.probability)
    assert len(logged) > 2
    for offer_id, seen in logged.items():
        assert seen == {float(expected[int(offer_id[1:])])}
