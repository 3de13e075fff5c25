"""Compact binary encoding of snapshot records, shared by the publisher and the readers.

- Ranked lists (recommendations, similar items) are rows of a numpy structured dtype
  ``(pos: uint16|uint32, score: float16, label: uint8|uint16|uint32)`` — 5 to 10 bytes per entry. ``pos`` is
  the item's position in the version's item table, ``label`` an index into its (source, reason) table.
  A list of n entries is n rows back to back, so a whole frame encodes with one ``tobytes()``.
- Profiles are one row of a structured dtype built from the profile columns of the version
  (floats → float32, ints → int32, dates → int64 epoch seconds, strings → uint16 dictionary codes,
  lists of strings → fixed-width code arrays); the schema travels in the version's metadata.
- Buckets: ``bucket_of(id, n)`` is 32-bit FNV-1a of the UTF-8 id modulo n, computed identically one id
  at a time (serving) and vectorised over millions of ids (publishing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from recsys.store.keys import BUCKET_GROUPS, fnv1a32

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
NULL_CODE16 = 0xFFFF
NULL_INT32 = np.iinfo(np.int32).min
LIST_WIDTH = 3  # codes kept of a list-of-strings profile column (e.g. top_categories)


def fnv1a32_many(values: pl.Series | Sequence[str]) -> np.ndarray:
    """Vectorised :func:`fnv1a32` over many ids; returns uint32 (one pass per byte position, not per id)."""
    series = values if isinstance(values, pl.Series) else pl.Series(list(values), dtype=pl.String)
    raw = series.cast(pl.String).fill_null("").cast(pl.Binary)
    lengths = raw.bin.size().to_numpy().astype(np.int64)
    n = len(lengths)
    h = np.full(n, FNV_OFFSET, dtype=np.uint64)
    if n == 0:
        return h.astype(np.uint32)
    width = int(lengths.max())
    # One flat buffer, then a padded (n, width) byte matrix: no Python loop over ids.
    flat = np.frombuffer(b"".join(raw.to_list()), dtype=np.uint8)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    for j in range(width):
        live = lengths > j
        byte = np.zeros(n, dtype=np.uint64)
        byte[live] = flat[starts[live] + j]
        h = np.where(live, ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF, h)
    return h.astype(np.uint32)


def bucket_of(value: str, n_buckets: int) -> int:
    """Return the bucket of one id."""
    return fnv1a32(value) % n_buckets


def buckets_of(values: pl.Series | Sequence[str], n_buckets: int) -> np.ndarray:
    """Return the bucket of every id (int32)."""
    return (fnv1a32_many(values) % np.uint32(n_buckets)).astype(np.int32)


def n_buckets_for(count: int, per_bucket: int = 128) -> int:
    """Return the bucket count for ``count`` records: about ``per_bucket`` each, a multiple of ``BUCKET_GROUPS``.

    ~128 keeps a bucket's listpack small (inserting and looking up in a listpack scan it) while the
    per-key overhead (~100 B) stays under 1 B per record. Multiples of ``BUCKET_GROUPS`` keep each
    customer's buckets in the hash-tag group of their live keys (see ``Keys``); empty buckets are not written.
    """
    groups = max(1, math.ceil(count / per_bucket / BUCKET_GROUPS))
    return min(256, groups) * BUCKET_GROUPS


def list_dtype(n_items: int, n_labels: int) -> np.dtype:
    """Return the row dtype of ranked lists for a version with these table sizes."""
    pos = "<u2" if n_items <= 0xFFFF else "<u4"
    label = "u1" if n_labels <= 0xFF else "<u2" if n_labels <= 0xFFFF else "<u4"
    return np.dtype([("pos", pos), ("score", "<f2"), ("label", label)])


def struct_format(dtype: np.dtype) -> str:
    """Return the ``struct`` format of one list row (``iter_unpack`` decodes a short list faster than numpy)."""
    codes = {"u1": "B", "u2": "H", "u4": "I", "f2": "e"}
    return "<" + "".join(codes[dtype[name].str[1:]] for name in ("pos", "score", "label"))


def dtype_to_json(dtype: np.dtype) -> list[list[Any]]:
    """Return a JSON-able description of a structured dtype (inverse: :func:`dtype_from_json`)."""
    out: list[list[Any]] = []
    for name in dtype.names or ():
        sub = dtype[name]
        if sub.subdtype is not None:
            out.append([name, sub.subdtype[0].str, list(sub.subdtype[1])])
        else:
            out.append([name, sub.str])
    return out


def dtype_from_json(spec: list[list[Any]]) -> np.dtype:
    """Rebuild a structured dtype saved with :func:`dtype_to_json`."""
    return np.dtype([(f[0], f[1], tuple(f[2])) if len(f) == 3 else (f[0], f[1]) for f in spec])


F16_MAX = float(np.finfo(np.float16).max)  # 65504


def to_f16(score: Any) -> Any:
    """Return ``score`` (scalar or array) as float16, clipped to ±65504 instead of overflowing to ±inf.

    Scores above that (a popularity count of a shop with more than 65k buyers) keep their rank (lists are
    stored in rank order) and are served as 65504; inf would be served as JSON ``null``.
    """
    return np.clip(np.nan_to_num(np.asarray(score, dtype=np.float64), nan=0.0), -F16_MAX, F16_MAX).astype(np.float16)


def encode_lists(pos: np.ndarray, score: np.ndarray, label: np.ndarray, dtype: np.dtype) -> bytes:
    """Encode rows already sorted by owner then rank; slice the result per owner with ``offsets``."""
    rows = np.empty(len(pos), dtype=dtype)
    rows["pos"] = pos
    rows["score"] = to_f16(score)
    rows["label"] = label
    return rows.tobytes()


def decode_list(blob: bytes, dtype: np.dtype) -> np.ndarray:
    """Decode one owner's ranked list (a structured array with ``pos``, ``score``, ``label``)."""
    return np.frombuffer(blob, dtype=dtype)


def split_blob(blob: bytes, counts: np.ndarray, row_size: int) -> list[bytes]:
    """Cut an encoded buffer into per-owner byte strings (``counts`` rows each, in order)."""
    ends = np.cumsum(counts.astype(np.int64)) * row_size
    starts = ends - counts.astype(np.int64) * row_size
    view = memoryview(blob)
    return [view[s:e].tobytes() for s, e in zip(starts.tolist(), ends.tolist())]


@dataclass(frozen=True)
class ProfileCodec:
    """Encodes profile rows to fixed-size records and back. ``columns`` maps name → kind.

    Kinds: ``f`` float32, ``i`` int32, ``t`` datetime (int64 epoch seconds), ``b`` bool, ``s`` string code,
    ``l`` list of string codes. String columns share one dictionary (``strings``).
    """

    columns: tuple[tuple[str, str], ...]
    strings: tuple[str, ...]

    @property
    def dtype(self) -> np.dtype:
        """The record dtype."""
        kinds = {"f": "<f4", "i": "<i4", "t": "<i8", "b": "u1", "s": "<u2"}
        fields: list[Any] = []
        for name, kind in self.columns:
            fields.append((name, "<u2", (LIST_WIDTH,)) if kind == "l" else (name, kinds[kind]))
        return np.dtype(fields)

    def to_json(self) -> dict[str, Any]:
        """Return the codec as JSON-able metadata."""
        return {"columns": [list(c) for c in self.columns], "strings": list(self.strings)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProfileCodec:
        """Rebuild from :meth:`to_json`."""
        return cls(tuple((str(n), str(k)) for n, k in data["columns"]), tuple(data["strings"]))

    @classmethod
    def for_frame(cls, frame: pl.DataFrame, id_column: str) -> ProfileCodec:
        """Infer the codec of a profiles frame. String columns with more than 65534 distinct values are dropped."""
        columns: list[tuple[str, str]] = []
        strings: set[str] = set()
        for name, dtype in frame.schema.items():
            if name == id_column:
                continue
            if dtype.is_float():
                kind = "f"
            elif dtype.is_integer():
                kind = "i"
            elif dtype == pl.Boolean:
                kind = "b"
            elif isinstance(dtype, pl.Datetime | pl.Date):
                kind = "t"
            elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
                kind = "s"
                values = frame.get_column(name).cast(pl.String).drop_nulls().unique()
            elif isinstance(dtype, pl.List) and dtype.inner in (pl.String, pl.Categorical):
                kind = "l"
                values = (
                    frame.get_column(name)
                    .list.head(LIST_WIDTH)
                    .explode(empty_as_null=False)
                    .cast(pl.String)
                    .drop_nulls()
                    .unique()
                )
            else:
                continue  # nested or exotic columns are not served
            if kind in "sl":
                if len(strings) + values.len() >= NULL_CODE16:
                    continue  # a per-customer free-text column would not fit a dictionary; skip it
                strings.update(values.to_list())
            columns.append((name, kind))
        return cls(tuple(columns), tuple(sorted(strings)))

    def encode(self, frame: pl.DataFrame) -> np.ndarray:
        """Return one record per row of ``frame`` (a structured array; ``.tobytes()`` then split)."""
        out = np.zeros(frame.height, dtype=self.dtype)
        lookup = pl.DataFrame(
            {
                "__s": pl.Series(self.strings, dtype=pl.String),
                "__c": pl.arange(0, len(self.strings), eager=True, dtype=pl.UInt16),
            }
        )
        mapping = dict(zip(lookup["__s"], lookup["__c"]))
        for name, kind in self.columns:
            col = frame.get_column(name)
            if kind == "f":
                out[name] = col.cast(pl.Float32).fill_null(float("nan")).to_numpy()
            elif kind == "i":
                out[name] = (
                    col.cast(pl.Int64).clip(NULL_INT32 + 1, np.iinfo(np.int32).max).fill_null(NULL_INT32).to_numpy()
                )
            elif kind == "b":
                out[name] = col.cast(pl.UInt8).fill_null(0).to_numpy()
            elif kind == "t":
                out[name] = col.cast(pl.Datetime("us", "UTC")).dt.epoch("s").fill_null(NULL_INT32).to_numpy()
            elif kind == "s":
                out[name] = (
                    col.cast(pl.String)
                    .replace_strict(mapping, default=NULL_CODE16, return_dtype=pl.UInt16)
                    .fill_null(NULL_CODE16)
                    .to_numpy()
                )
            else:
                heads = col.list.head(LIST_WIDTH)
                for j in range(LIST_WIDTH):
                    out[name][:, j] = (
                        heads.list.get(j, null_on_oob=True)
                        .cast(pl.String)
                        .replace_strict(mapping, default=NULL_CODE16, return_dtype=pl.UInt16)
                        .fill_null(NULL_CODE16)
                        .to_numpy()
                    )
        return out

    def decode(self, blob: bytes) -> dict[str, Any]:
        """Return one profile as a dict of plain Python values (None for nulls)."""
        import datetime as dt

        row = np.frombuffer(blob, dtype=self.dtype)[0]
        out: dict[str, Any] = {}
        for name, kind in self.columns:
            value = row[name]
            if kind == "f":
                out[name] = None if math.isnan(value) else float(value)
            elif kind == "i":
                out[name] = None if value == NULL_INT32 else int(value)
            elif kind == "b":
                out[name] = bool(value)
            elif kind == "t":
                out[name] = None if value == NULL_INT32 else dt.datetime.fromtimestamp(int(value), dt.UTC).isoformat()
            elif kind == "s":
                out[name] = None if value == NULL_CODE16 else self.strings[int(value)]
            else:
                out[name] = [self.strings[int(c)] for c in value if c != NULL_CODE16]
        return out
