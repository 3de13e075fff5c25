"""Fixtures of the end-to-end tests: the dashboard's demo service (built once per test process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.ui_demo import UiDemo, build_ui_demo, drop_ui_demo


@pytest.fixture(scope="session")
def ui_demo(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiDemo]:
    """``centric demo`` on 120 customers, published in its own namespace, with an admin and a read key."""
    demo = build_ui_demo(redis_url, tmp_path_factory.mktemp("ui-demo") / "artifacts")
    yield demo
    drop_ui_demo(demo)
