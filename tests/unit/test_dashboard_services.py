"""Pieces of the dashboard that need no Redis: the per-process cache, bulk-grant files, chart numbers."""

from __future__ import annotations

import asyncio
import time

import pytest

from serving.services.bulk_grants import parse
from serving.services.dashboard_cache import DashboardCache
from serving.ui import charts


def test_cache_computes_once_within_its_ttl_and_again_after() -> None:
    calls = []

    async def compute() -> int:
        calls.append(1)
        await asyncio.sleep(0.01)
        return len(calls)

    async def body() -> list[int]:
        cache = DashboardCache()
        together = await asyncio.gather(*(cache.get("x", 60, compute) for _ in range(5)))
        cache.MAX_STALE_S = 0.0
        expired = await cache.get("x", 0.0, compute)
        return [*together, expired]

    assert asyncio.run(body()) == [1, 1, 1, 1, 1, 2]


def test_a_stale_entry_is_answered_at_once_and_refreshed_behind() -> None:
    cache = DashboardCache()
    cache.REFRESH_DELAY_S = 0.0
    values = iter([1, 2, 3])

    async def compute() -> int:
        return next(values)

    async def body() -> list[int]:
        first = await cache.get("y", 0.05, compute)
        time.sleep(0.06)
        stale = await cache.get("y", 0.05, compute)  # expired: answered stale, recomputed in the background
        await asyncio.sleep(0.01)
        fresh = await cache.get("y", 0.05, compute)
        await cache.forget("y")
        return [first, stale, fresh, await cache.get("y", 0.05, compute)]

    assert asyncio.run(body()) == [1, 1, 2, 3]


def test_a_very_old_entry_is_recomputed_before_answering() -> None:
    cache = DashboardCache()
    values = iter([1, 2])

    async def compute() -> int:
        return next(values)

    async def body() -> tuple[int, int]:
        cache.MAX_STALE_S = 0.02
        first = await cache.get("z", 0.001, compute)
        time.sleep(0.03)
        return first, await cache.get("z", 0.001, compute)

    assert asyncio.run(body()) == (1, 2)


def test_grant_file_problems_name_the_row_and_the_key_follows_the_content() -> None:
    good = parse("customer_id,points,note\na,10,x\nb,5,y\n", "goodwill", "g.csv")
    assert good.grants == [("a", 10), ("b", 5)] and good.problems == [] and good.total_points == 15
    assert good.key == parse("customer_id,points,note\na,10,x\nb,5,y\n", "goodwill").key
    assert good.key != parse("customer_id,points,note\na,10,x\nb,5,y\n", "other reason").key
    bad = parse("customer_id,points\na,ten\n,3\nb,0\nc,2\nc,3\n", "r", "g.csv")
    assert bad.problems == [
        "g.csv row 2: points 'ten' is not a whole number",
        "g.csv row 3: customer_id is empty",
        "g.csv row 4: points 0 must be between 1 and 10,000,000",
        "g.csv row 6: customer 'c' is also on row 5; give one line per customer",
    ]
    assert parse("id,amount\na,1\n", "r", "g.csv").problems[0].startswith("g.csv: the header must name customer_id")


@pytest.mark.parametrize(("value", "shown"), [(1234567.891, "$1,234,568"), (-12.5, "−$12"), (None, "–"), (0.0, "$0")])
def test_money_has_thousands_separators_and_a_real_minus(value: float | None, shown: str) -> None:
    assert charts.money(value) == shown


def test_chart_marks_carry_the_exact_values_and_escape_labels() -> None:
    svg = str(charts.hbars([charts.Bar("<b>", 3.0), charts.Bar("ok", 1234.0)], "t"))
    assert 'data-value="3.0"' in svg and 'data-value="1234.0"' in svg and "&lt;b&gt;" in svg and "<b>" not in svg
    assert "1,234" in svg and 'role="img"' in svg


def test_points_past_expiry_not_yet_booked_are_the_booked_sum_less_the_live_liability() -> None:
    from serving.ui.views import unbooked_expiry

    history = {"months": [{"liability_points": 900}, {"liability_points": 1_000}]}
    assert unbooked_expiry(history, {"liability_points": 960, "debt_points": 25}) == 40
    assert unbooked_expiry(history, {"liability_points": 1_200}) == 0  # a history older than new earnings
    assert unbooked_expiry({"months": []}, {"liability_points": 5}) == 0


def test_customer_curve_follows_the_chosen_clv_model_not_bgnbd() -> None:
    """A one-time buyer long gone: BG/NBD says P(alive) = 1 whatever the silence, the chosen Pareto/NBD does not,
    and the customer page's curve must agree with the profile's p_alive (computed by the chosen model)."""
    from recsys.analytics.pareto_nbd import ParetoNBDModel
    from serving.services.customer360 import p_alive_curve

    profile = {"frequency": 0.0, "recency": 0.0, "T": 60.0}
    bgnbd = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    pnbd = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    old_curve = p_alive_curve(profile, bgnbd)
    assert old_curve and all(point["p_alive"] == 1.0 for point in old_curve)
    curve = p_alive_curve(profile, bgnbd, clv_model={"name": "pnbd", "params": pnbd})
    expected = ParetoNBDModel.from_params(*pnbd.values()).p_alive([0.0], [0.0], [60.0])[0]
    assert curve[0]["p_alive"] == round(float(expected), 4) < 0.5
    assert [p["p_alive"] for p in curve] == sorted((p["p_alive"] for p in curve), reverse=True)
    assert p_alive_curve(profile, None) == []


def test_experiment_reports_decode_events_and_assign_arms_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from types import SimpleNamespace

    import orjson

    from recsys.store.keys import Fields, Keys
    from serving.services import campaign_view

    members = [f"c{i}" for i in range(200)]
    purchases = [
        (b"1-0", {Fields.EVENT.encode(): orjson.dumps({"type": "purchase", "customer_id": c, "price": 2.5})})
        for c in members[::2]
    ]

    class Stream:
        async def xrevrange(self, name: str, count: int) -> list[object]:
            return purchases

    seen: list[int] = []
    real_decode, real_report = campaign_view.decode_entry, campaign_view.report

    def decode(fields: dict[bytes, bytes]) -> dict[str, str]:
        seen.append(threading.get_ident())
        return real_decode(fields)

    def report(*args: object) -> object:
        seen.append(threading.get_ident())
        return real_report(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(campaign_view, "decode_entry", decode)
    monkeypatch.setattr(campaign_view, "report", report)
    experiment = {
        "id": "e1",
        "arms": [{"name": "nba", "weight": 0.5}, {"name": "hold", "weight": 0.5, "holdout": True}],
    }
    svc = SimpleNamespace(redis=Stream(), keys=Keys(env="t"))

    async def body() -> tuple[int, list[dict[str, object]]]:
        return threading.get_ident(), await campaign_view.experiment_reports([experiment], members, svc)  # type: ignore[arg-type]

    loop_thread, reports = asyncio.run(body())
    assert reports[0]["control"] == "hold" and reports[0]["events"] == 100
    assert sum(a["customers"] for a in reports[0]["arms"]) == 200  # type: ignore[attr-defined]
    assert len(seen) == 101 and loop_thread not in seen  # 100 events decoded and one report, none on the loop


def test_a_figure_forgotten_while_a_refresh_runs_is_not_brought_back_by_that_refresh() -> None:
    cache = DashboardCache()
    cache.REFRESH_DELAY_S = 0.0
    ledger = {"points": 100}

    async def compute() -> int:
        seen = ledger["points"]  # the scan reads the ledger first, then takes a while
        await asyncio.sleep(0.05)
        return seen

    async def body() -> list[int]:
        first = await cache.get("summary", 0.2, compute)
        await asyncio.sleep(0.25)
        stale = await cache.get("summary", 0.2, compute)  # answered stale; a refresh starts reading the ledger
        await asyncio.sleep(0.01)
        ledger["points"] = 170  # a bulk grant lands meanwhile, and the page that applied it forgets the figure
        await cache.forget("summary")
        after = await cache.get("summary", 0.2, compute)  # waits for the refresh, then must not take its value
        return [first, stale, after, await cache.get("summary", 0.2, compute)]

    assert asyncio.run(body()) == [100, 100, 170, 170]


def test_an_offer_table_computed_across_a_publish_is_not_kept_under_the_older_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime
    from typing import Any

    from serving.services import campaign_view, dashboard

    class Store:
        version = "A"

        async def dashboard(self) -> dict[str, Any]:
            return {"version": self.version}

    store = Store()

    async def offer_table(*_: object) -> list[dict[str, Any]]:
        store.version = "B"  # a publish lands while the table is computed: it read B's catalog
        return [{"offer_id": "only_in_b"}]

    async def no_members(_: object) -> list[str]:
        return []

    monkeypatch.setattr(campaign_view, "offer_table", offer_table)
    monkeypatch.setattr(dashboard, "members", no_members)
    cache, snap = DashboardCache(), {"version": "A", "experiments": None}
    now = datetime(2026, 1, 5, tzinfo=UTC)
    offers, _ = asyncio.run(dashboard.cached_campaigns(cache, store, None, snap, now))  # type: ignore[arg-type]
    assert offers == [{"offer_id": "only_in_b"}]  # the page being rendered gets the rows
    # but a rollback to A must not find B's offers filed under A
    assert dashboard.offers_name(snap) not in cache.entries


def test_a_grant_file_whose_quote_never_closes_is_a_problem_not_a_server_error() -> None:
    lines = "".join(f"c{i},5\n" for i in range(30_000))  # ~250 kB swallowed into one field by the open quote
    upload = parse(f'customer_id,points\nc,5\n"broken,5\n{lines}', "goodwill", "grants.csv")
    assert upload.grants == [("c", 5)]
    assert len(upload.problems) == 1 and upload.problems[0].startswith("grants.csv line 3: ")
    assert "field larger than field limit" in upload.problems[0] and "quoting" in upload.problems[0]
