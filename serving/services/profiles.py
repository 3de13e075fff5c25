"""The customer-360 record from the active snapshot, with what happened since."""

from __future__ import annotations

from typing import Any

from recsys.exceptions import UnknownCustomer
from recsys.store.base import SnapshotReader


async def profile(store: SnapshotReader, customer_id: str) -> dict[str, Any]:
    """Return ``{"customer_id", "version", "segment", "lifecycle", "clv", "p_alive", …}``.

    Raises ``UnknownCustomer`` when the active snapshot has no profile for the customer.
    """
    found = await store.profile(customer_id)
    if found is None:
        version = await store.version()
        raise UnknownCustomer(
            f"customer {customer_id!r} has no profile in snapshot {version}; profiles cover customers with purchases "
            "in the analysed data (run `centric analyze` and `centric publish` to include new ones)"
        )
    version, record = found
    return {"customer_id": customer_id, "version": version, **record}
