"""Every Redis key Centric uses is built here, and nowhere else.

Keys are namespaced ``centric:<env>:…``. Hash tags (the part in ``{…}``) decide the
Redis Cluster slot: keys that one atomic script touches together share a tag, and
per-customer data is tagged by customer so that it spreads over the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "centric"


def _tag(value: str) -> str:
    # Braces inside an id would change the hash slot; they are replaced, not trusted.
    return "{" + value.replace("{", "(").replace("}", ")") + "}"


@dataclass(frozen=True)
class Keys:
    """Key builder for one environment namespace (``Keys("prod").snapshot_pointer()``)."""

    env: str = "dev"

    @property
    def ns(self) -> str:
        """The namespace prefix ``centric:<env>``."""
        return f"{PREFIX}:{self.env}"

    def pattern(self) -> str:
        """Glob matching every key of this namespace (for tests and cleanup)."""
        return f"{self.ns}:*"

    # --- API keys (serving auth) -------------------------------------------------
    def api_keys(self) -> str:
        """Hash: sha256(api key) -> JSON {scope, created_at, name}."""
        return f"{self.ns}:auth:api_keys"

    # --- events -------------------------------------------------------------------
    def events_stream(self) -> str:
        """Stream of events posted to /v1/events, read by the offline side."""
        return f"{self.ns}:events"

    # --- snapshots (publish / serve) ------------------------------------------------
    # (section owned by publishing; add snapshot key builders below)

    # --- loyalty ledger ----------------------------------------------------------------
    # (section owned by loyalty; add ledger key builders below)

    # --- next-best-action --------------------------------------------------------------
    # (section owned by next-best-action; add decision/contact/budget key builders below)
