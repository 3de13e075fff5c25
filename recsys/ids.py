"""``IdMap``: a frozen bijection between external string ids and internal contiguous indices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from recsys.exceptions import ArtifactError


@dataclass(frozen=True)
class IdMap:
    """External ids (strings) in internal-index order. Index ``i`` is ``external_ids[i]``.

    Build with :meth:`from_values`; convert with :meth:`to_internal` / :meth:`to_external`.
    """

    external_ids: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {value: i for i, value in enumerate(self.external_ids)}
        if len(index) != len(self.external_ids):
            raise ValueError("IdMap external ids must be unique")
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_values(cls, values: pl.Series | Iterable[str]) -> IdMap:
        """Return an IdMap of the distinct values, sorted so the same data always gives the same map."""
        series = values if isinstance(values, pl.Series) else pl.Series(list(values), dtype=pl.String)
        unique = series.cast(pl.String).drop_nulls().unique().sort()
        return cls(tuple(unique.to_list()))

    def __len__(self) -> int:
        return len(self.external_ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    @property
    def size(self) -> int:
        """Number of ids."""
        return len(self.external_ids)

    def index_of(self, external_id: str) -> int | None:
        """Return the internal index of one external id, or ``None`` if unknown."""
        return self._index.get(external_id)

    def to_internal(self, external: pl.Series | Sequence[str], *, strict: bool = True) -> np.ndarray:
        """Map external ids to int32 indices. Unknown ids raise ``KeyError`` (or become -1 if not strict)."""
        series = external if isinstance(external, pl.Series) else pl.Series(list(external), dtype=pl.String)
        # A hash join in polars instead of a Python loop: millions of ids map in milliseconds.
        out = (
            series.cast(pl.String)
            .replace_strict(self.external_ids, range(len(self)), default=-1, return_dtype=pl.Int32)
            .fill_null(-1)
            .to_numpy()
            .astype(np.int32, copy=False)
        )
        if strict and (out < 0).any():
            missing = series.filter(pl.Series(out < 0)).head(5).to_list()
            raise KeyError(f"unknown ids (first {len(missing)}): {missing}")
        return out

    def to_internal_frame(self, frame: pl.DataFrame, column: str, out_column: str) -> pl.DataFrame:
        """Add ``out_column`` with the internal index of ``column`` (inner join: unknown ids are dropped)."""
        mapping = pl.DataFrame(
            {
                column: pl.Series(self.external_ids, dtype=pl.String),
                out_column: pl.arange(0, len(self), eager=True, dtype=pl.Int32),
            }
        )
        return frame.join(mapping, on=column, how="inner")

    def to_external(self, internal: np.ndarray | Sequence[int]) -> list[str]:
        """Map internal indices back to external ids."""
        ids = self.external_ids
        return [ids[int(i)] for i in internal]

    def to_array(self) -> np.ndarray:
        """Return the ids as a fixed-width unicode array (saved in ``.npz`` without pickle)."""
        return np.asarray(self.external_ids, dtype=np.str_) if self.external_ids else np.zeros(0, dtype="<U1")

    @classmethod
    def from_array(cls, array: np.ndarray) -> IdMap:
        """Rebuild an IdMap saved with :meth:`to_array`; raises ``ArtifactError`` on a wrong dtype."""
        if array.dtype.kind != "U":
            raise ArtifactError(f"IdMap array must be unicode strings, got dtype {array.dtype}")
        return cls(tuple(str(v) for v in array.tolist()))
