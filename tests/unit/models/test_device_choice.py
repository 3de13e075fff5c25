"""GPU or CPU for implicit's factor models is chosen in one place (``make_implicit``), from ``implicit.gpu.HAS_CUDA``.

No GPU here: these tests check the choice, not the GPU kernels (the project must never need a GPU).
"""

from __future__ import annotations

import implicit.gpu
import pytest

from recsys.models import make_implicit


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_without_cuda_factor_models_run_on_the_cpu(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(implicit.gpu, "HAS_CUDA", False)
    model = make_implicit(kind, factors=8)
    assert type(model).__module__.startswith("implicit.cpu.")


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_with_cuda_reported_factor_models_ask_for_the_gpu(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(implicit.gpu, "HAS_CUDA", True)
    try:
        model = make_implicit(kind, factors=8)
    except ValueError as exc:  # this CPU-only build of implicit refuses the GPU request itself
        assert "GPU" in str(exc) or "CUDA" in str(exc)
    else:
        assert type(model).__module__.startswith("implicit.gpu.")


def test_an_explicit_choice_overrides_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(implicit.gpu, "HAS_CUDA", True)
    assert type(make_implicit("als", use_gpu=False, factors=8)).__module__.startswith("implicit.cpu.")


def test_knn_models_are_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(implicit.gpu, "HAS_CUDA", True)
    assert type(make_implicit("bm25", K=10)).__module__.startswith("implicit.nearest_neighbours")
