"""Customer analytics: RFM/BTYD summaries, BG/NBD, Gamma-Gamma, CLV, churn, lifecycle, segments, profiles."""

from recsys.analytics.bgnbd import BetaGeoModel
from recsys.analytics.gamma_gamma import GammaGammaModel
from recsys.analytics.summary import calibration_holdout, rfm_summary

__all__ = ["BetaGeoModel", "GammaGammaModel", "calibration_holdout", "rfm_summary"]
