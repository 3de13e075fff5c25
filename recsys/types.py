"""Id aliases: external ids are strings, internal indices are integers that never leave the process."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

ExternalId: TypeAlias = str
CustomerId: TypeAlias = str
ItemId: TypeAlias = str
InternalIds: TypeAlias = npt.NDArray[np.int32]
Scores: TypeAlias = npt.NDArray[np.float32]
