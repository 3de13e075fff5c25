"""Exploration in serving against a real Redis: off is today's answer; on, the probability shown is served and
logged with the impression; experiments' arms and holdouts are untouched."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from recsys import clock
from recsys.events.sync import entries_frame
from recsys.exceptions import ConfigError
from recsys.nba.decision import build_frame, decide
from recsys.nba.exploration import Explorer
from recsys.nba.offers import catalog_from_dict
from recsys.settings import Settings
from recsys.store.connection import sync_client
from recsys.store.keys import Keys
from serving.services.offers import customer_offers
from tests.helpers.async_redis import with_client
from tests.helpers.nba import FakeOfferStore

auth = pytest.importorskip("serving.auth")
app_module = pytest.importorskip("serving.app")

NOW = dt.datetime(2028, 3, 1, 12, 0, tzinfo=dt.UTC)
CATALOG = {
    "policy": {"max_per_channel": {"app": 5}, "max_offers_per_customer": 4},
    "offer": [
        {"id": "big", "kind": "percent_discount", "channels": ["app"], "value": 50, "cost": 5},
        {"id": "mid", "kind": "amount_discount", "channels": ["app"], "value": 20, "cost": 2},
        {"id": "small", "kind": "content", "channels": ["app"], "value": 5},
        {"id": "tiny", "kind": "content", "channels": ["app"], "value": 1},
    ],
    "experiment": [
        {
            "id": "exp",
            "salt": "s",
            "offers": ["big"],
            "arms": [{"name": "nba", "weight": 0.5}, {"name": "hold", "weight": 0.5, "holdout": True}],
        }
    ],
}
EXPLORE = '{"app": {"policy": "epsilon_greedy", "epsilon": 1.0}}'


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[dt.datetime]:
    with clock.frozen(NOW) as moment:
        yield moment


@pytest.fixture
def store() -> FakeOfferStore:
    catalog = catalog_from_dict(CATALOG)
    frame = build_frame(pl.DataFrame({"customer_id": [f"c{i}" for i in range(40)], "p_alive": [0.9] * 40}))
    return FakeOfferStore(decide(frame, catalog, now=NOW).decisions, [o.to_dict() for o in catalog.offers], "v9")


def _serve(redis_url: str, keys: Keys, store: FakeOfferStore, customer: str, explorer: Explorer | None) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(
            with_client(
                redis_url,
                lambda r: customer_offers(r, keys, store, customer, channel="app", k=2, now=NOW, explorer=explorer),
            )
        )
    finally:
        loop.close()


def test_exploration_off_answers_exactly_as_without_an_explorer(redis_url: str, keys: Keys, store: Any) -> None:
    greedy = Explorer.from_config("", seed=1)
    for customer in ("c1", "c2", "c3"):
        before = _serve(redis_url, keys, store, customer, None)
        after = _serve(redis_url, keys, store, customer, greedy)
        assert after == before and after.policy == "greedy"
        assert [o.p_shown for o in after.offers] == [1.0] * len(after.offers)


def test_exploring_varies_the_slate_logs_its_probability_and_keeps_arms_and_holdouts(
    redis_url: str, keys: Keys, store: FakeOfferStore
) -> None:
    explorer = Explorer.from_config(EXPLORE, seed=4)
    published = {(r["customer_id"], r["offer_id"]): r["arm"] for r in store.rows}
    holdout = [c for c in (f"c{i}" for i in range(40)) if (c, "big") not in published]
    assert holdout, "the experiment's holdout arm must hold some customers"
    slates = set()
    for customer in [f"c{i}" for i in range(40)] * 3:
        answer = _serve(redis_url, keys, store, customer, explorer)
        assert answer.policy == "epsilon_greedy:1"
        for offer in answer.offers:
            assert offer.arm == published[(customer, offer.offer_id)]  # only published decisions, arm as published
            candidates = sum(1 for (c, _o) in published if c == customer)
            assert offer.p_shown == pytest.approx(2 / candidates)
        if customer in holdout:
            assert "big" not in [o.offer_id for o in answer.offers]
        slates.add((customer, tuple(o.offer_id for o in answer.offers)))
    assert len(slates) > 40  # the same customer saw different slates


@pytest.fixture
def http(redis_url: str, keys: Keys, store: FakeOfferStore) -> Any:
    sync = sync_client(redis_url)
    read_key, write_key = auth.create_api_key(sync, keys, "read"), auth.create_api_key(sync, keys, "write")
    sync.close()
    settings = Settings(redis_url=redis_url, env=keys.env, exploration=EXPLORE, exploration_seed=2)
    app = app_module.create_app(settings, gc_tuning=False)
    with TestClient(app) as client:
        app.state.store = store
        yield client, {"Authorization": f"Bearer {read_key}"}, {"Authorization": f"Bearer {write_key}"}


def test_the_impression_carries_the_served_probability_policy_and_version_into_the_log(
    http: Any, redis_client: Any, keys: Keys
) -> None:
    client, read, write = http
    body = client.get("/v1/customers/c1/offers?channel=app&k=2", headers=read).json()
    assert body["policy"] == "epsilon_greedy:1" and body["version"] == "v9"
    shown = body["offers"][0]
    event = {
        "type": "impression",
        "customer_id": "c1",
        "offer_id": shown["offer_id"],
        "channel": "app",
        "arm": shown["arm"],
        "p_shown": shown["p_shown"],
        "policy": body["policy"],
        "version": body["version"],
    }
    assert client.post("/v1/events", json={"events": [event]}, headers=write).status_code in (200, 202)
    bad = client.post("/v1/events", json={"events": [event | {"p_shown": 0}]}, headers=write)
    assert bad.status_code == 422
    entries = redis_client.xrange(keys.events_stream())
    frame = entries_frame([[eid, [k for kv in fields.items() for k in kv]] for eid, fields in entries])
    row = frame.filter(pl.col("type") == "impression").row(0, named=True)
    assert (row["p_shown"], row["policy"], row["version"]) == (shown["p_shown"], "epsilon_greedy:1", "v9")


def test_a_bad_exploration_setting_stops_the_service_at_start_naming_the_channel() -> None:
    # parsed lazily, it answered every offers request with the configuration error instead
    bad = Settings(
        redis_url="redis://127.0.0.1:1/0", exploration='{"email": {"policy": "epsilon_greedy", "epsilon": 2}}'
    )
    with pytest.raises(ConfigError, match="channel 'email'.*epsilon must be in"):
        app_module.create_app(bad, gc_tuning=False)


def test_centric_serve_refuses_a_bad_exploration_setting_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from typer.testing import CliRunner

    from training.cli import app

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("uvicorn started with a bad CENTRIC_EXPLORATION")

    monkeypatch.setattr(uvicorn, "run", never)
    monkeypatch.setenv("CENTRIC_EXPLORATION", '{"push": {"policy": "softmax"}}')
    out = CliRunner().invoke(app, ["serve"])
    assert out.exit_code == 2 and "channel 'push'" in out.output, out.output


def test_a_channel_cap_bounds_the_slate_size_not_which_candidates_may_be_explored(redis_url: str, keys: Keys) -> None:
    # a cap of 2 app impressions per period with k=2: the explorer must still choose among every allowed offer
    # (it was handed only the top 2, so it never explored and logged p_shown 1)
    catalog = catalog_from_dict(CATALOG | {"policy": {"max_per_channel": {"app": 2}}, "experiment": []})
    frame = build_frame(pl.DataFrame({"customer_id": ["c1"], "p_alive": [0.9]}))
    capped = FakeOfferStore(decide(frame, catalog, now=NOW).decisions, [o.to_dict() for o in catalog.offers], "v9")
    candidates = len(capped.rows)
    assert candidates > 2
    explorer = Explorer.from_config(EXPLORE, seed=3)
    slates = set()
    for _ in range(30):
        answer = _serve(redis_url, keys, capped, "c1", explorer)
        assert len(answer.offers) == 2
        assert [o.p_shown for o in answer.offers] == pytest.approx([2 / candidates] * 2)
        slates.add(tuple(o.offer_id for o in answer.offers))
    assert len(slates) > 1
    greedy = _serve(redis_url, keys, capped, "c1", None)
    assert [o.p_shown for o in greedy.offers] == [1.0, 1.0]
