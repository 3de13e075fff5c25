"""One small interface over the "buy till you die" purchase models, and the registry ``analyze`` picks from.

Every model is fitted on the same ``(x, t_x, T)`` summary (repeat purchase periods, time of the last one, time
observed) and answers the same three questions: P(alive), expected purchases in the next ``t`` for a known
customer, and expected purchases in ``t`` for a new one (the cohort curve of the tracking plot).

* ``bgnbd`` — BG/NBD (Fader, Hardie & Lee 2005): dropout only after a repeat purchase, so a customer without
  repeats is always "alive".
* ``mbgnbd`` — MBG/NBD (Batislam, Denizel & Filiztekin 2007): may also drop out right after the first purchase,
  so a one-time buyer's P(alive) falls with the time since that purchase.
* ``pnbd`` — Pareto/NBD (Schmittlein, Morrison & Colombo 1987): exponential lifetimes in continuous time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, Self

import numpy as np

from recsys.analytics.bgnbd import BetaGeoModel
from recsys.analytics.mbgnbd import ModifiedBetaGeoModel
from recsys.analytics.pareto_nbd import ParetoNBDModel
from recsys.exceptions import ConfigError

ArrayLike = np.ndarray | float


class PurchaseModel(Protocol):
    """What profiles, CLV, the holdout check and the plots need from a purchase/dropout model."""

    @property
    def name(self) -> str:
        """Registry name (``bgnbd``, ``mbgnbd``, ``pnbd``)."""
        ...

    @property
    def label(self) -> str:
        """Name for people (``MBG/NBD``)."""
        ...

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of ``params_`` in order."""
        ...

    params_: np.ndarray
    loglik_: float
    init: tuple[float, ...] | None  # parameters to start the next fit from (warm start), or None

    def fit(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, weights: np.ndarray | None = None) -> Self:
        """Fit by maximum likelihood; return ``self``; raise ``DataError`` on bad input or no convergence."""
        ...

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Return P(alive | x, t_x, T)."""
        ...

    def conditional_expected(self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Return E[purchases in the next ``t`` | x, t_x, T]."""
        ...

    def expected(self, t: ArrayLike) -> np.ndarray:
        """Return E[repeat purchases in (0, t]] for a customer whose first purchase was at 0."""
        ...

    def to_dict(self) -> dict[str, float]:
        """Return the parameters by name and ``loglik`` (JSON-able)."""
        ...


MODELS: dict[str, type[PurchaseModel]] = {"bgnbd": BetaGeoModel, "mbgnbd": ModifiedBetaGeoModel, "pnbd": ParetoNBDModel}
AUTO = "auto"


def check_model_name(name: str) -> str:
    """Return ``name`` if it is ``auto`` or a known model; raise ``ConfigError`` naming the choices otherwise."""
    if name != AUTO and name not in MODELS:
        raise ConfigError(f"unknown CLV model {name!r}: use {AUTO} or one of {', '.join(MODELS)}")
    return name


def make_model(name: str) -> PurchaseModel:
    """Return a new, unfitted model by registry name; raise ``ConfigError`` for an unknown name."""
    if name not in MODELS:
        raise ConfigError(f"unknown CLV model {name!r}: use one of {', '.join(MODELS)}")
    model: PurchaseModel = MODELS[name]()
    return model


def model_from_dict(name: str, params: Mapping[str, Any]) -> PurchaseModel:
    """Return a model of kind ``name`` with the parameters of a ``to_dict()`` (e.g. read back from models.json)."""
    model = make_model(name)
    try:
        model.params_ = np.array([float(params[k]) for k in model.param_names])
    except KeyError as exc:
        raise ConfigError(f"{name} parameters need {', '.join(model.param_names)}; missing {exc}") from None
    model.loglik_ = float(params.get("loglik", float("nan")))
    return model
