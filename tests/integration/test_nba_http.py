"""The offers and campaign-audience endpoints over HTTP, with scopes, against a real Redis."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from recsys.nba.decision import build_frame, decide
from recsys.nba.offers import catalog_from_dict
from recsys.settings import Settings
from recsys.store.connection import sync_client
from recsys.store.keys import Keys
from tests.helpers.nba import FakeOfferStore

auth = pytest.importorskip("serving.auth")
app_module = pytest.importorskip("serving.app")

CATALOG = {
    "policy": {"max_per_channel": {"app": 3}},
    "offer": [
        {"id": "big", "kind": "percent_discount", "channels": ["app"], "value": 50, "cost": 5, "max_redemptions": 1},
        {"id": "mid", "kind": "amount_discount", "channels": ["app", "email"], "value": 20, "cost": 2},
    ],
}


def _store() -> FakeOfferStore:
    catalog = catalog_from_dict(CATALOG)
    frame = build_frame(pl.DataFrame({"customer_id": [f"c{i}" for i in range(30)], "p_alive": [0.9] * 30}))
    return FakeOfferStore(decide(frame, catalog).decisions, [o.to_dict() for o in catalog.offers], version="v7")


@pytest.fixture
def client(redis_url: str, keys: Keys) -> Any:
    sync = sync_client(redis_url)
    read_key, admin_key = auth.create_api_key(sync, keys, "read"), auth.create_api_key(sync, keys, "admin")
    write_key = auth.create_api_key(sync, keys, "write")
    sync.close()
    app = app_module.create_app(Settings(redis_url=redis_url, env=keys.env), gc_tuning=False)
    with TestClient(app) as http:
        app.state.store = _store()
        http.write_headers = {"Authorization": f"Bearer {write_key}"}
        yield http, {"Authorization": f"Bearer {read_key}"}, {"Authorization": f"Bearer {admin_key}"}


def test_customer_offers_endpoint_serves_ranked_offers_and_stops_an_exhausted_one(client: Any) -> None:
    http, read, _ = client
    customer = next(
        c
        for c in (f"c{i}" for i in range(30))
        if "big" in [o["offer_id"] for o in http.get(f"/v1/customers/{c}/offers", headers=read).json()["offers"]]
    )
    body = http.get(f"/v1/customers/{customer}/offers?channel=app&k=3", headers=read).json()
    assert body["customer_id"] == customer and body["version"] == "v7"
    assert set(body["offers"][0]) == {"offer_id", "expected_value", "p_accept", "reason", "arm", "p_shown"}
    assert body["policy"] == "greedy" and {o["p_shown"] for o in body["offers"]} == {1.0}
    evs = body["offers"][0]["expected_value"], body["offers"][-1]["expected_value"]
    assert evs[0] >= evs[1]
    # the events endpoint may not exist in every checkout; the service is what it calls
    from serving.services.offer_events import apply_offer_events

    app = http.app
    http.portal.call(
        apply_offer_events,
        app.state.redis,
        app.state.keys,
        [{"type": "redeem", "customer_id": "zz", "offer_id": "big"}],
    )
    after = http.get(f"/v1/customers/{customer}/offers?channel=app&k=3", headers=read).json()
    assert "big" not in [o["offer_id"] for o in after["offers"]]


def test_audience_endpoint_needs_admin_and_matches_decisions(client: Any) -> None:
    http, read, admin = client
    assert http.post("/v1/campaigns/mid/audience", json={"budget": 2}, headers=read).status_code in (401, 403)
    assert http.post("/v1/campaigns/nope/audience", json={"budget": 2}, headers=admin).status_code == 404
    assert http.post("/v1/campaigns/mid/audience", json={"budget": -1}, headers=admin).status_code == 422
    body = http.post("/v1/campaigns/mid/audience", json={"budget": 2, "channel": "email"}, headers=admin).json()
    assert 0 < body["expected_redemptions"] <= 2
    member = body["customers"][0]
    offers = http.get(f"/v1/customers/{member['customer_id']}/offers?channel=email", headers=read).json()["offers"]
    mine = next(o for o in offers if o["offer_id"] == "mid")
    assert mine["expected_value"] == pytest.approx(member["expected_value"])
    assert mine["p_accept"] == pytest.approx(member["p_accept"])


def test_events_endpoint_dismissal_and_redemption_change_served_offers(client: Any) -> None:
    pytest.importorskip("serving.routers.events")
    http, read, _ = client
    customer = next(
        c
        for c in (f"c{i}" for i in range(30))
        if [o["offer_id"] for o in http.get(f"/v1/customers/{c}/offers", headers=read).json()["offers"]][:1] == ["big"]
    )
    dismiss = {"events": [{"type": "dismiss", "customer_id": customer, "offer_id": "big", "channel": "app"}]}
    assert http.post("/v1/events", json=dismiss, headers=http.write_headers).status_code in (200, 201, 202)
    assert "big" not in [
        o["offer_id"] for o in http.get(f"/v1/customers/{customer}/offers", headers=read).json()["offers"]
    ]
    other = next(
        c
        for c in (f"c{i}" for i in range(30))
        if c != customer
        and "big" in [o["offer_id"] for o in http.get(f"/v1/customers/{c}/offers", headers=read).json()["offers"]]
    )
    redeem = {"events": [{"type": "redeem", "customer_id": customer, "offer_id": "big"}]}
    assert http.post("/v1/events", json=redeem, headers=http.write_headers).status_code in (200, 201, 202)
    assert "big" not in [
        o["offer_id"] for o in http.get(f"/v1/customers/{other}/offers", headers=read).json()["offers"]
    ]
