"""P(accept | customer, offer) without response data: the documented prior.

Where response data exists, ``centric propensity fit`` learns a calibrated model
(``recsys.nba.propensity_model.PropensityModel``); ``recsys.nba.calibration`` measures calibration.

The prior (no response data): ``logit p = logit(base_rate) + 2·(affinity − 0.5) + 1·(p_alive − 0.5)``,
``base_rate`` from the offer (by kind, see ``offers.BASE_RATES``). It is monotone in affinity and in
P(alive) and equals the base rate for an average customer (affinity 0.5, p_alive 0.5).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

PRIOR_AFFINITY_WEIGHT = 2.0
PRIOR_ALIVE_WEIGHT = 1.0


def prior_probability(base_rate: np.ndarray | float, affinity: np.ndarray, p_alive: np.ndarray) -> np.ndarray:
    """Return the documented prior P(accept); missing affinity/p_alive count as 0.5 (average)."""
    aff = np.nan_to_num(np.asarray(affinity, dtype=np.float64), nan=0.5)
    alive = np.nan_to_num(np.asarray(p_alive, dtype=np.float64), nan=0.5)
    base = np.clip(np.asarray(base_rate, dtype=np.float64), 1e-6, 1 - 1e-6)
    return expit(logit(base) + PRIOR_AFFINITY_WEIGHT * (aff - 0.5) + PRIOR_ALIVE_WEIGHT * (alive - 0.5))
