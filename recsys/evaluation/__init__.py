"""Offline evaluation: ranking metrics, protocols (splits), the model runner and hyperparameter search."""

from recsys.evaluation.metrics import DEFAULT_KS, evaluate_top_k, ranking_metrics
from recsys.evaluation.protocols import PROTOCOLS, make_plan
from recsys.evaluation.runner import EvalData, ModelFactory, Recommender, evaluate_model, prepare
from recsys.evaluation.search import SearchResult, candidates, search

__all__ = [
    "DEFAULT_KS",
    "PROTOCOLS",
    "EvalData",
    "ModelFactory",
    "Recommender",
    "SearchResult",
    "candidates",
    "evaluate_model",
    "evaluate_top_k",
    "make_plan",
    "prepare",
    "ranking_metrics",
    "search",
]
