"""Recommenders: one interface (``Recommender``), implicit-backed collaborative models, baselines and a hybrid.

``make_model(name, **params)`` builds any model by name; ``load_recommender(path)`` loads a saved one.
Results use internal indices; :func:`recsys.models.external.to_frame` maps them to external ids at the edge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsys.exceptions import ArtifactError
from recsys.models.base import NotFittedError, Recommender, manifest_of, top_k
from recsys.models.baselines import (
    BuyAgainRecommender,
    PopularInCategoryRecommender,
    PopularityRecommender,
    TrendingRecommender,
    UserKNNRecommender,
)
from recsys.models.collaborative import (
    ALSRecommender,
    BM25KNNRecommender,
    BPRRecommender,
    CosineKNNRecommender,
    make_implicit,
)
from recsys.models.filters import ItemFilter, repeat_categories, repeat_category_items
from recsys.models.hybrid import HybridRecommender, tune_blend
from recsys.models.ranker import LearnedHybridRecommender

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        PopularityRecommender,
        TrendingRecommender,
        PopularInCategoryRecommender,
        BuyAgainRecommender,
        ALSRecommender,
        BPRRecommender,
        CosineKNNRecommender,
        BM25KNNRecommender,
        UserKNNRecommender,
        HybridRecommender,
        LearnedHybridRecommender,
    )
}


def explore_models() -> dict[str, type[Recommender]]:
    """Return the registered models the linear hybrid can use for its explore list (``can_explore``), by name."""
    return {name: cls for name, cls in MODELS.items() if cls.can_explore}


def make_model(name: str, **params: Any) -> Recommender:
    """Return an unfitted model by registry name; raises ``ValueError`` for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](**params)


def load_recommender(path: Path | str) -> Recommender:
    """Load a saved model from ``<dir>/<name>.json`` (or the ``.npz`` beside it, or a directory with one model).

    Raises ``ArtifactError`` when nothing loadable is there, the model is unknown, or the schema version is not
    supported.
    """
    path = Path(path)
    if path.is_dir():
        manifests = sorted(path.glob("*.json"))
        if len(manifests) != 1:
            raise ArtifactError(
                f"{path} holds {len(manifests)} model manifests; pass the one to load (e.g. {path}/als.json)"
            )
        path = manifests[0]
    directory, name = path.parent, path.stem
    model_name = manifest_of(directory, name).get("model")
    if model_name not in MODELS:
        raise ArtifactError(f"{path} holds an unknown model {model_name!r}; known: {', '.join(MODELS)}")
    return MODELS[model_name].load(directory, name)


__all__ = [
    "MODELS",
    "ALSRecommender",
    "BM25KNNRecommender",
    "BPRRecommender",
    "BuyAgainRecommender",
    "CosineKNNRecommender",
    "HybridRecommender",
    "ItemFilter",
    "LearnedHybridRecommender",
    "NotFittedError",
    "PopularInCategoryRecommender",
    "PopularityRecommender",
    "Recommender",
    "TrendingRecommender",
    "UserKNNRecommender",
    "load_recommender",
    "explore_models",
    "make_implicit",
    "make_model",
    "repeat_categories",
    "repeat_category_items",
    "top_k",
    "tune_blend",
]
