"""Bulk point grants from a CSV upload: parse and check (the preview), then apply idempotently.

The CSV has a header with ``customer_id`` and ``points`` (other columns are ignored). The idempotency key is
derived from the reason and the file's bytes, so applying the same file twice (a double click, a retry, a
second admin) grants once: the ledger answers the second time with ``replayed``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import datetime

from recsys.exceptions import DataError
from serving.schemas.loyalty import LedgerResultPublic
from serving.services import loyalty as loyalty_service
from serving.services.loyalty import LoyaltyService

MAX_LINES = 10_000
MAX_POINTS = 10_000_000
BATCH = 1000  # grants per ledger pipeline (the API's limit per request)


@dataclass
class GrantFile:
    """A checked upload: the grants to apply, the problems found (row number and why), and its key."""

    grants: list[tuple[str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    key: str = ""

    @property
    def total_points(self) -> int:
        """Points granted by the whole file."""
        return sum(p for _, p in self.grants)


def parse(text: str, reason: str, filename: str = "upload") -> GrantFile:
    """Return the grants of a CSV (header ``customer_id,points``) with every problem named by row; never raises."""
    out = GrantFile(key="ui-grant-" + hashlib.sha256(f"{reason}\n{text}".encode()).hexdigest()[:32])
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip() for f in reader.fieldnames or []]
    if "customer_id" not in fields or "points" not in fields:
        out.problems.append(f"{filename}: the header must name customer_id and points; found {fields or 'no header'}")
        return out
    reader.fieldnames = fields
    seen: dict[str, int] = {}
    rows = enumerate(reader, start=2)
    while True:
        line = reader.line_num + 1
        try:
            row_no, row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a quote never closed swallows the rest of the file into one huge field
            out.problems.append(f"{filename} line {line}: {exc}; check the quoting from that line on")
            break
        if len(out.grants) + len(out.problems) >= MAX_LINES:
            out.problems.append(f"{filename}: more than {MAX_LINES:,} lines; split the file")
            break
        cid = (row.get("customer_id") or "").strip()
        raw = (row.get("points") or "").strip()
        if not cid:
            out.problems.append(f"{filename} row {row_no}: customer_id is empty")
            continue
        if len(cid) > 128:
            out.problems.append(f"{filename} row {row_no}: customer_id is longer than 128 characters")
            continue
        try:
            points = int(raw)
        except ValueError:
            out.problems.append(f"{filename} row {row_no}: points {raw!r} is not a whole number")
            continue
        if not 0 < points <= MAX_POINTS:
            out.problems.append(f"{filename} row {row_no}: points {points} must be between 1 and {MAX_POINTS:,}")
            continue
        if cid in seen:
            out.problems.append(
                f"{filename} row {row_no}: customer {cid!r} is also on row {seen[cid]}; give one line per customer"
            )
            continue
        seen[cid] = row_no
        out.grants.append((cid, points))
    if not out.grants and not out.problems:
        out.problems.append(f"{filename}: no grant lines below the header")
    return out


async def apply(svc: LoyaltyService, upload: GrantFile, reason: str, now: datetime) -> list[LedgerResultPublic]:
    """Apply a checked upload in batches under its key; raises ``DataError`` if it has problems."""
    if upload.problems:
        raise DataError(f"the file has {len(upload.problems)} problem(s); fix them and preview again")
    results: list[LedgerResultPublic] = []
    for start in range(0, len(upload.grants), BATCH):
        part = upload.grants[start : start + BATCH]
        results += await loyalty_service.grant(svc, part, reason, upload.key, now)
    return results
