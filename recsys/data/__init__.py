"""Validated data: load transactions and catalogs from CSV or Parquet, reject bad rows with reasons.

See docs/CONTRACTS.md ("Validated data") for what a ``LoadResult`` holds.
"""

from __future__ import annotations

from recsys.data.adapters import ADAPTERS
from recsys.data.catalog import CatalogResult, load_catalog
from recsys.data.report import LoadResult, Reason, ValidationReport
from recsys.data.transactions import load_transactions

SCHEMAS = tuple(ADAPTERS)

__all__ = ["SCHEMAS", "CatalogResult", "LoadResult", "Reason", "ValidationReport", "load_catalog", "load_transactions"]
