"""Every Redis key Centric uses is built here, and nowhere else; so is every hash field name (``Fields``).

Keys are namespaced ``centric:<env>:…``. Hash tags (the part in ``{…}``) decide the
Redis Cluster slot: keys that one atomic script touches together share a tag, and
per-customer data is tagged by customer so that it spreads over the cluster.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

PREFIX = "centric"


BUCKET_GROUPS = 1024  # hash-tag groups of snapshot buckets; bucket counts are multiples of it (snapshots section)
_FNV_OFFSET, _FNV_PRIME = 0x811C9DC5, 0x01000193


def fnv1a32(value: str) -> int:
    """Return the 32-bit FNV-1a hash of ``value``'s UTF-8 bytes (the bucket hash; vectorised in ``codec``)."""
    h = _FNV_OFFSET
    for byte in value.encode():
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def _tag(value: str) -> str:
    # Braces inside an id would change the hash slot, so they are escaped, reversibly ('%' too): two different ids
    # never share a tag ("{a}" and "(a)" once did). Ids without '%', '{' or '}' keep the same key names as before.
    if "%" in value or "{" in value or "}" in value:
        value = value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return "{" + value + "}"


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

    def rate_limit(self, key_id: str) -> str:
        """Hash: the token bucket (tokens, ts) of one API key; its own slot (tag ``rl:<id>``), one script per call."""
        return f"{self.ns}:auth:rl:{_tag('rl:' + key_id)}"

    # --- events -------------------------------------------------------------------
    def events_stream(self) -> str:
        """Stream of events posted to /v1/events, read by the offline side."""
        return f"{self.ns}:events"

    def events_batch(self, idempotency_key: str) -> str:
        """Hash (24 h TTL): the stages an event batch sent with ``Idempotency-Key`` has completed.

        Its hash tag is the stream's whole name, so it shares the stream's Cluster slot and the stream
        write and its "done" mark commit in one MULTI.
        """
        return f"{self.ns}:evbatch:{{{self.events_stream()}}}:{idempotency_key}"

    def events_sync_group(self) -> str:
        """Consumer-group name (not a key) on ``events_stream``: ``centric events sync`` reads through it."""
        return "centric-sync"

    def events_sync_state(self) -> str:
        """Hash: ``synced_id`` (last stream id durably in the event store), ``synced_at``, ``events`` (total).

        Written by ``centric events sync`` after each durable batch; read by the service for its backlog and by
        trimming (the stream is trimmed only up to ``synced_id``). Tagged like the stream (same Cluster slot).
        """
        return f"{self.ns}:evsync:{{{self.events_stream()}}}:state"

    # --- snapshots (publish / serve) ------------------------------------------------
    # (section owned by publishing; add snapshot key builders below)
    # Control keys (pointer, version list, per-version meta, publish lock) share the tag ``{snap}``: the
    # activation script switches the pointer and updates the version list atomically, which on Cluster
    # needs one slot. They are tiny and read once per version by each worker, so one slot is no hot spot.
    # Per-customer (and per-item) data is grouped into bucket hashes, not one key per customer: a key
    # costs ~100 B of key/dict overhead (the budget is 250 B per customer), while a bucket hash holds
    # ~128 customers in one compact listpack. Buckets are tagged ``{g<bucket mod 1024>}`` and bucket
    # counts are multiples of 1024, so a customer's bucket in *every* version and their live
    # recent-purchases key share one tag (``{g<fnv1a32(id) mod 1024>}``): serving reads both with one
    # script call, which Cluster allows because they are in one slot. 1024 groups spread the data over
    # 1024 slots. Small per-version tables (items, fallbacks, labels) are tagged by version.
    def snapshot_pointer(self) -> str:
        """String: the active snapshot version id. Serving reads every snapshot key through it."""
        return f"{self.ns}:snap:{_tag('snap')}:active"

    def snapshot_versions(self) -> str:
        """Sorted set: published (verified) version ids scored by publish time (epoch seconds)."""
        return f"{self.ns}:snap:{_tag('snap')}:versions"

    def snapshot_meta(self, version: str) -> str:
        """Hash: one version's metadata (counts, checksums, bucket counts, encodings, created_at)."""
        return f"{self.ns}:snap:{_tag('snap')}:meta:{version}"

    def snapshot_lock(self) -> str:
        """String with TTL: held by the one publish in progress."""
        return f"{self.ns}:snap:{_tag('snap')}:lock"

    def snapshot_pending(self) -> str:
        """Set: versions being written and not yet activated; a later publish deletes those whose writer died."""
        return f"{self.ns}:snap:{_tag('snap')}:pending"

    def snapshot_table(self, version: str, name: str) -> str:
        """String or hash: a small per-version table (``items:<chunk>``, ``fallbacks``, ``labels``,
        ``offer_catalog``)."""
        return f"{self.ns}:snap:{version}:{name}:{_tag('v:' + version)}"

    def snapshot_bucket(self, version: str, kind: str, bucket: int) -> str:
        """Hash: one bucket of per-entity records of ``kind`` (``recs``, ``prof``, ``offers`` by customer; ``sim``
        by item)."""
        return f"{self.ns}:snap:{version}:{kind}:{bucket}:{_tag(f'g{bucket % BUCKET_GROUPS}')}"

    def snapshot_bucket_pattern(self, version: str) -> str:
        """Glob matching every key of one version (for cleanup of an abandoned publish)."""
        return f"{self.ns}:snap:{version}:*"

    def recent_purchases(self, customer_id: str) -> str:
        """Hash item_id -> epoch seconds of purchases posted since the snapshot (same tag as the customer's buckets)."""
        # The tag comes before the id: Redis hashes the first {...}, so braces inside an id cannot move the slot.
        return f"{self.ns}:rt:recent:{_tag(f'g{fnv1a32(customer_id) % BUCKET_GROUPS}')}:{customer_id}"

    # --- loyalty ledger ----------------------------------------------------------------
    # (section owned by loyalty; add ledger key builders below)
    # Every per-customer ledger key carries the tag ``{lc:<customer>}``: one Lua script changes the
    # account, its expiry lots, entries, idempotency records and orders atomically, also on Cluster.
    # Reward stock is tagged by reward (``{lr:<reward>}``): redeem reserves stock in its own script first
    # (idempotent per key), then debits the customer; a refused debit releases the reservation.
    def loyalty_account(self, customer_id: str) -> str:
        """Hash: ``balance``, ``debt``, ``orders``, ``tier``, ``seq``, ``em:<YYYYMM>`` earned, ``lot:<expiry>``
        remaining."""
        return f"{self.ns}:loy:acct:{_tag('lc:' + customer_id)}"

    def loyalty_lots(self, customer_id: str) -> str:
        """Sorted set of a customer's expiry lots: member = expiry epoch seconds, score = the same."""
        return f"{self.ns}:loy:lots:{_tag('lc:' + customer_id)}"

    def loyalty_entries(self, customer_id: str) -> str:
        """List of a customer's ledger entries (JSON), append-only."""
        return f"{self.ns}:loy:entries:{_tag('lc:' + customer_id)}"

    def loyalty_idempotency(self, customer_id: str) -> str:
        """Hash: idempotency key -> ``<payload sha256>|<result JSON>`` (a recorded refusal:
        ``<sha>|!insufficient|<JSON>``)."""
        return f"{self.ns}:loy:idem:{_tag('lc:' + customer_id)}"

    def loyalty_orders(self, customer_id: str) -> str:
        """Hash: order id -> JSON ``{earned, reversed, cents}`` (what the order earned and what was reversed)."""
        return f"{self.ns}:loy:orders:{_tag('lc:' + customer_id)}"

    def loyalty_stock(self, reward_id: str) -> str:
        """Hash of one reward's stock: ``stock`` (int) and ``res:<len(customer)>:<customer>:<idempotency key>``
        reservations."""
        return f"{self.ns}:loy:stock:{_tag('lr:' + reward_id)}"

    def loyalty_customers(self) -> str:
        """Set of customer ids that have a ledger (for reconcile, expire, export)."""
        return f"{self.ns}:loy:customers"

    # --- next-best-action --------------------------------------------------------------
    # (section owned by next-best-action; add decision/contact/budget key builders below)
    # Contact state is tagged by customer (one slot per customer: one script updates it atomically);
    # budgets are tagged by offer (one slot per offer). No script needs both, so Cluster works.
    def nba_contacts(self, customer_id: str) -> str:
        """Hash of one customer's contact state: ``imp:<channel>:<period>`` counts, ``dis:<offer>`` /
        ``red:<offer>`` epoch seconds, ``redn:<offer>`` counts."""
        return f"{self.ns}:nba:contacts:{_tag('c:' + customer_id)}"

    def nba_budget(self, offer_id: str) -> str:
        """Hash of one offer's live budget use: ``redemptions``, ``impressions`` and ``impressions:<arm>`` (ints)."""
        return f"{self.ns}:nba:budget:{_tag('o:' + offer_id)}"

    # --- dashboard (web UI) ---------------------------------------------------------------
    # One small key per signed-in browser session, tagged by the session id (sessions are independent).
    def ui_session(self, session_id: str) -> str:
        """String with TTL: a web UI session, JSON ``{key_id, digest, scope, csrf, created_at}`` (never the API key)."""
        return f"{self.ns}:ui:session:{_tag('s:' + session_id)}"

    def ui_figure(self, name: str) -> str:
        """String with TTL: one computed dashboard figure, JSON ``{at, value}`` (``serving.services.dashboard_cache``),
        tagged by its name (each is read and written on its own)."""
        return f"{self.ns}:ui:figure:{_tag('f:' + name)}"


class Fields:
    """Every hash field name (and per-version table name) Centric builds, so a hash's writer and reader share it.

    Grouped by the hash (``Keys`` builder) that holds them. Fields written by a Lua script are named here too and
    ``tests/unit/store/test_keys.py`` checks the script spells them the same way.
    """

    # --- snapshot meta hash (``Keys.snapshot_meta``) and per-version tables (``Keys.snapshot_table``) --------------
    META_INFO = "info"  # JSON: counts, checksums, bucket counts, encodings, created_at
    META_STATUS = "status"  # "writing" | "active"
    DASHBOARD_TABLE = "dashboard"  # JSON: the dashboard's aggregates of the version (recsys.analytics.dashboard)
    EXPERIMENTS_TABLE = "experiments"  # JSON: the experiments the version's decisions assigned arms by

    @staticmethod
    def audience_table(offer_id: str) -> str:
        """Name of the per-version table (Arrow IPC) holding one offer's decision rows."""
        return f"audience:{offer_id}"

    @staticmethod
    def model_table(name: str) -> str:
        """Name of the per-version table holding one published recommender file."""
        return f"model:{name}"

    # --- fallback lists: the names of the lists in the per-version ``fallbacks`` table ----------------------------
    # written by the train job (popular, trending, category:) and the publish (segment:), read by the service
    FALLBACK_POPULAR = "popular"  # popular with all customers
    FALLBACK_TRENDING = "trending"  # bought more often recently
    FALLBACK_CATEGORY_PREFIX = "category:"  # category:<category>: popular in one category
    FALLBACK_SEGMENT_PREFIX = "segment:"  # segment:<segment>: popular with one customer segment

    @staticmethod
    def category_fallback(category: str) -> str:
        """Name of the fallback list of the items popular in ``category``."""
        return f"{Fields.FALLBACK_CATEGORY_PREFIX}{category}"

    @staticmethod
    def segment_fallback(segment: str) -> str:
        """Name of the fallback list of the items popular with the customers of ``segment``."""
        return f"{Fields.FALLBACK_SEGMENT_PREFIX}{segment}"

    # --- event batch progress (``Keys.events_batch``) -----------------------------------------------------------
    BATCH_SHA = "sha"  # the batch's payload sha256 (a key reused for other events is a conflict)
    BATCH_STREAM = "stream"  # set once the batch's events are in the stream

    @staticmethod
    def batch_key_done(key: str) -> str:
        """Field set once the batch's offer counters on Redis key ``key`` committed."""
        return f"k:{key}"

    # --- events stream entries (``Keys.events_stream``) and the sync state (``Keys.events_sync_state``) --------
    EVENT = "event"  # a stream entry's one field: the event as JSON
    SYNC_ID = "synced_id"  # last stream id durably in the event store
    SYNC_EVENTS = "events"  # events in the event store
    SYNC_AT = "synced_at"  # ISO 8601 UTC of the last committed batch

    # --- loyalty account (``Keys.loyalty_account``; written by lua/ledger.lua) -----------------------------------
    ACCOUNT_EARNED_PREFIX = "em:"  # em:<YYYYMM>: points earned that month (tier qualification)
    ACCOUNT_LOT_PREFIX = "lot:"  # lot:<expiry epoch>: points of that expiry lot left

    # --- reward stock (``Keys.loyalty_stock``; reservations written by lua/stock.lua) --------------------------
    STOCK = "stock"  # units left
    RESERVATION_PREFIX = "res:"  # res:<len(customer)>:<customer>:<idempotency key>: a redemption's reservation

    # --- next-best-action contact state (``Keys.nba_contacts``) -------------------------------------------------
    @staticmethod
    def impressions(channel: str, when: dt.datetime) -> str:
        """Impressions shown on ``channel`` on ``when``'s UTC day (a count)."""
        return f"imp:{channel}:{when.astimezone(dt.UTC):%Y%m%d}"

    @staticmethod
    def dismissed(offer_id: str) -> str:
        """Epoch seconds of the customer's last dismissal of the offer."""
        return f"dis:{offer_id}"

    @staticmethod
    def redeemed(offer_id: str) -> str:
        """Epoch seconds of the customer's last redemption of the offer."""
        return f"red:{offer_id}"

    @staticmethod
    def redemptions(offer_id: str) -> str:
        """The customer's redemptions of the offer so far (a count)."""
        return f"redn:{offer_id}"

    # --- next-best-action offer budget (``Keys.nba_budget``) ----------------------------------------------------
    BUDGET_REDEMPTIONS = "redemptions"
    BUDGET_IMPRESSIONS = "impressions"

    @staticmethod
    def arm_impressions(arm: str) -> str:
        """Impressions of the offer shown under experiment arm ``arm``."""
        return f"impressions:{arm}"
