"""Model artifacts on disk: ``<name>.npz`` (arrays, no pickle) + ``<name>.json`` (manifest).

The manifest carries ``schema_version``; a reader refuses versions it does not know rather than
guessing at a layout that may have changed.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.exceptions import ArtifactError
from recsys.ids import IdMap

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})


def fingerprint(matrix: sp.csr_matrix, customers: IdMap, items: IdMap, seed: str = "") -> str:
    """Return a short sha256 of the matrix and its id maps: the same data always gives the same value.

    ``seed``: an earlier fingerprint to extend (the purchases', when views and clicks are added to them).
    """
    digest = hashlib.sha256(seed.encode())
    for array in (matrix.indptr, matrix.indices, matrix.data):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update("\x1f".join(customers.external_ids).encode())
    digest.update(b"\x1e")
    digest.update("\x1f".join(items.external_ids).encode())
    return digest.hexdigest()[:16]


def csr_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """Return the arrays that rebuild ``matrix`` (see :func:`csr_from_arrays`)."""
    return {
        f"{prefix}_data": matrix.data,
        f"{prefix}_indices": matrix.indices,
        f"{prefix}_indptr": matrix.indptr,
        f"{prefix}_shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def csr_from_arrays(prefix: str, arrays: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    """Rebuild a CSR matrix saved with :func:`csr_arrays`; raises ``KeyError`` when a part is missing."""
    shape = tuple(int(v) for v in arrays[f"{prefix}_shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]), shape=shape
    )


def write(directory: Path, name: str, manifest: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``name.npz`` and ``name.json`` (manifest with ``schema_version`` added); return the JSON path."""
    directory.mkdir(parents=True, exist_ok=True)
    # Uncompressed: writing is several times faster, and the arrays are mostly incompressible floats anyway.
    np.savez(directory / f"{name}.npz", **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as allow_pickle
    body = {"schema_version": SCHEMA_VERSION, **manifest, "arrays": f"{name}.npz"}
    path = directory / f"{name}.json"
    path.write_text(json.dumps(body, indent=1))
    return path


def read(directory: Path, name: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Return ``(manifest, arrays)`` of one saved model.

    Raises ``ArtifactError`` when a file is missing or unreadable, or the schema version is unknown.
    """
    path = directory / f"{name}.json"
    if not path.exists():
        raise ArtifactError(f"no model manifest {path}; train first (centric train --out {directory.parent})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"model manifest {path} is not valid JSON: {exc}") from exc
    version = manifest.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ArtifactError(
            f"model manifest {path} has schema_version {version!r}; this Centric reads "
            f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}. Retrain with this version (centric train)."
        )
    npz_path = directory / str(manifest.get("arrays", f"{name}.npz"))
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"model arrays {npz_path} cannot be read: {exc}") from exc
    return manifest, arrays
