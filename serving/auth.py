"""API keys with scopes: ``Authorization: Bearer KEY``.

A key is ``ck_<id>_<secret>``, shown once. Redis stores, in the hash ``keys.api_keys()``, field ``<id>``
(public, used only for lookup) → JSON ``{sha256, scope, name, created_at}`` where ``sha256`` is the hex
digest of the whole key; the plain key is never stored. A request's key is hashed and compared with
the stored digest by ``hmac.compare_digest`` (constant time: the lookup by id reveals nothing secret).
Records are cached in-process for ``CACHE_TTL_S`` seconds so authentication does not cost a Redis
round trip per request; a revoked key stops working within that time. While Redis is unreachable, a key
verified within ``Settings.auth_grace_s`` (15 minutes by default) stays valid, so reads keep answering
degraded for the whole outage (docs/operations.md). Scopes are ordered: admin implies write implies read.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import redis
from fastapi import HTTPException, Request
from redis.exceptions import RedisError

from recsys.clock import utcnow
from recsys.exceptions import ConfigError, StoreUnavailable
from recsys.store.keys import Keys

SCOPES = ("read", "write", "admin")
_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}
CACHE_TTL_S = 10.0
GRACE_S = 900.0  # default of ``Settings.auth_grace_s``: how long a verified key outlives a Redis outage
NEGATIVE_TTL_S = 5.0  # unknown key ids are answered from memory for this long
VERIFIED = "centric.auth"  # ASGI scope entry (token, scope) set by ``serving.guard`` once a request's key is verified
_CACHE_MAX = 10_000
KEY_PREFIX = "ck_"


class AuthError(HTTPException):
    """401/403 with a machine-readable ``code`` (rendered by ``serving.errors``)."""

    def __init__(self, status_code: int, detail: str, code: str) -> None:
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code


def hash_key(api_key: str) -> str:
    """Return the hex sha256 digest under which ``api_key`` is stored."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def scope_rank(scope: str) -> int:
    """Return the rank of a scope (read 0 < write 1 < admin 2; -1 for unknown)."""
    return _RANK.get(scope, -1)


def _check_scope(scope: str) -> None:
    if scope not in _RANK:
        raise ConfigError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")


def create_api_key(client: redis.Redis, keys: Keys, scope: str, name: str = "") -> str:
    """Create a key with ``scope``, store only its sha256 digest, and return the plain key (show it once).

    Raises ``ConfigError`` for an unknown scope and ``StoreUnavailable`` when Redis cannot be written.
    """
    _check_scope(scope)
    key_id = secrets.token_hex(6)
    api_key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = {
        "sha256": hash_key(api_key),
        "scope": scope,
        "name": name,
        "created_at": utcnow().isoformat(),
    }
    try:
        client.hset(keys.api_keys(), key_id, orjson.dumps(record))
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot store the API key in Redis: {exc}") from exc
    return api_key


def list_api_keys(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    """Return ``{id, scope, name, created_at}`` of every stored key (never the key or its digest)."""
    try:
        raw = client.hgetall(keys.api_keys())
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot read API keys from Redis: {exc}") from exc
    out = []
    for key_id, value in raw.items():
        record = orjson.loads(value)
        out.append({"id": key_id.decode(), **{k: str(record.get(k, "")) for k in ("scope", "name", "created_at")}})
    return sorted(out, key=lambda r: r["created_at"])


def revoke_api_key(client: redis.Redis, keys: Keys, key_id: str) -> bool:
    """Delete the key with this id (as shown by ``list_api_keys``); return whether it existed."""
    try:
        return bool(client.hdel(keys.api_keys(), key_id))
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot revoke the API key in Redis: {exc}") from exc


class KeyCache:
    """Key id → (digest, scope, when verified) for keys seen recently, and key ids Redis did not know.

    ``get`` answers a record verified within ``ttl_s`` (no Redis lookup needed). ``stale`` answers one verified
    within ``grace_s``: used only while Redis is unreachable, so keys in use before an outage keep working during
    it (degraded mode) for at most ``grace_s`` after their last check. ``is_unknown`` remembers, for
    ``negative_ttl_s``, ids that Redis did not know, so a flood of the same wrong key costs no lookups. Both maps are
    bounded, so random ids cannot grow them.
    """

    def __init__(
        self,
        ttl_s: float = CACHE_TTL_S,
        *,
        grace_s: float = GRACE_S,
        negative_ttl_s: float = NEGATIVE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s, self.grace_s, self.negative_ttl_s, self.clock = ttl_s, grace_s, negative_ttl_s, clock
        self._entries: dict[str, tuple[str, str, float]] = {}
        self._unknown: dict[str, float] = {}
        # key id -> the Redis lookup in flight: concurrent requests with one uncached key share it (no stampede
        # when an entry expires under load)
        self.inflight: dict[str, asyncio.Future[Any]] = {}

    def get(self, key_id: str) -> tuple[str, str] | None:
        """Return ``(digest, scope)`` if cached and fresh."""
        entry = self._entries.get(key_id)
        if entry is None or entry[2] + self.ttl_s < self.clock():
            return None
        return entry[0], entry[1]

    def stale(self, key_id: str) -> tuple[str, str] | None:
        """Return ``(digest, scope)`` if verified within ``grace_s`` (for use while Redis is unreachable)."""
        entry = self._entries.get(key_id)
        if entry is None or entry[2] + max(self.grace_s, self.ttl_s) < self.clock():
            return None
        return entry[0], entry[1]

    def put(self, key_id: str, digest: str, scope: str) -> None:
        """Remember a record just read from Redis."""
        self._unknown.pop(key_id, None)
        if len(self._entries) >= _CACHE_MAX and key_id not in self._entries:
            horizon = self.clock() - max(self.grace_s, self.ttl_s)
            self._entries = {k: v for k, v in self._entries.items() if v[2] >= horizon}
            if len(self._entries) >= _CACHE_MAX:
                self._entries.clear()
        self._entries[key_id] = (digest, scope, self.clock())

    def forget(self, key_id: str) -> None:
        """Drop a record (Redis says the key is gone)."""
        self._entries.pop(key_id, None)

    def is_unknown(self, key_id: str) -> bool:
        """Return whether Redis said, within ``negative_ttl_s``, that it does not know this id."""
        expiry = self._unknown.get(key_id)
        if expiry is None:
            return False
        if expiry < self.clock():
            self._unknown.pop(key_id, None)
            return False
        return True

    def put_unknown(self, key_id: str) -> None:
        """Remember that Redis does not know this id."""
        if len(self._unknown) >= _CACHE_MAX:
            self._unknown.clear()
        self._unknown[key_id] = self.clock() + self.negative_ttl_s


def _bearer(request: Request) -> str:
    return bearer_token(request.headers.get("authorization"))


def bearer_token(header: str | None) -> str:
    """Return the key of an ``Authorization: Bearer KEY`` header; raise 401 ``AuthError`` when missing or malformed."""
    if not header:
        raise AuthError(
            401,
            "missing API key: send `Authorization: Bearer <key>` (create one with `centric keys create`)",
            "missing_api_key",
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "malformed Authorization header: expected `Bearer <key>`", "invalid_api_key")
    return token.strip()


def _key_id(token: str) -> str | None:
    if not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX) :].partition("_")
    return key_id if sep and key_id and secret else None


def key_cache(state: Any) -> KeyCache:
    """Return the app's key cache (``app.state.key_cache``), made on first use with the app's grace time."""
    cache: KeyCache | None = getattr(state, "key_cache", None)
    if cache is None:
        settings = getattr(state, "settings", None)
        cache = state.key_cache = KeyCache(grace_s=getattr(settings, "auth_grace_s", GRACE_S))
    return cache


async def lookup_scope(state: Any, token: str, client: str | None = None) -> str | None:
    """Return the scope of ``token`` if it is a live key of this service, else ``None``.

    Cached keys cost no Redis call; ids Redis did not know are remembered briefly (``KeyCache.is_unknown``);
    concurrent lookups of one id share one call; failed lookups are limited per client address
    (``state.address_limiter``, 429 ``RateLimited`` once used up). While Redis is unreachable a key verified within
    the grace time keeps its scope (``KeyCache.stale``).
    Raises ``StoreUnavailable`` when Redis is needed, unreachable, and the key was not verified recently.
    """
    key_id = _key_id(token)
    if key_id is None:
        return None
    cache = key_cache(state)
    record = cache.get(key_id)
    if record is None:
        if cache.is_unknown(key_id):
            return None
        limiter = getattr(state, "address_limiter", None)
        if limiter is not None and client is not None:
            limiter.check(client)
        try:
            stored = await _shared_lookup(state, cache, key_id)
        except (RedisError, OSError) as exc:
            record = cache.stale(key_id)
            if record is None:
                raise StoreUnavailable(f"cannot check the API key: Redis is unreachable ({exc})") from exc
        else:
            if stored is None:
                cache.forget(key_id)
                cache.put_unknown(key_id)
                if limiter is not None and client is not None:
                    limiter.spend(client)
                return None
            parsed = orjson.loads(stored)
            record = (str(parsed.get("sha256", "")), str(parsed.get("scope", "")))
            cache.put(key_id, *record)
    digest, scope = record
    if hmac.compare_digest(digest, hash_key(token)):
        return scope
    limiter = getattr(state, "address_limiter", None)
    if limiter is not None and client is not None:
        limiter.spend(client)  # a known id with a wrong secret: guessing
    return None


async def _shared_lookup(state: Any, cache: KeyCache, key_id: str) -> Any:
    pending = cache.inflight.get(key_id)
    if pending is None:
        pending = asyncio.ensure_future(state.redis.hget(state.keys.api_keys(), key_id))
        cache.inflight[key_id] = pending
        pending.add_done_callback(lambda _done: cache.inflight.pop(key_id, None))
    return await asyncio.shield(pending)


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _scope_of(request: Request, token: str) -> str | None:
    verified = request.scope.get(VERIFIED)
    if verified is not None and verified[0] == token:
        return str(verified[1])
    return await lookup_scope(request.app.state, token, _client(request))


async def scope_of_key(request: Request, api_key: str) -> str | None:
    """Return the scope of ``api_key`` if it is a live key of this service, else ``None`` (cached like requests).

    Raises ``StoreUnavailable`` when Redis is needed and unreachable.
    """
    return await _scope_of(request, api_key.strip())


def key_id_of(api_key: str) -> str | None:
    """Return the public id part of a well-formed key (``ck_<id>_<secret>``), else ``None``."""
    return _key_id(api_key.strip())


def require_scope(scope: str) -> Callable[[Request], Awaitable[str]]:
    """Return a dependency that admits requests whose key has ``scope`` or a higher one; it returns the key's scope.

    Raises 401 (no/unknown key) or 403 (scope too low) as ``AuthError``; 503 when Redis is needed and down.
    """
    _check_scope(scope)

    async def dependency(request: Request) -> str:
        token = _bearer(request)
        return admit(await _scope_of(request, token), scope)

    dependency.__name__ = f"require_{scope}"
    dependency.required_scope = scope  # type: ignore[attr-defined]  # read by required_scope()
    return dependency


def admit(granted: str | None, needed: str) -> str:
    """Return ``granted`` if it is ``needed`` or higher; raise 401 for no key (``None``), 403 for a lower scope."""
    if granted is None:
        raise AuthError(401, "unknown API key: it was never created here or has been revoked", "invalid_api_key")
    if _RANK.get(granted, -1) < _RANK[needed]:
        raise AuthError(
            403, f"this API key has scope {granted!r}; this endpoint needs {needed!r}", "insufficient_scope"
        )
    return granted


def required_scope(dependency: object) -> str | None:
    """Return the scope a ``require_scope`` dependency demands, ``None`` for any other callable."""
    return getattr(dependency, "required_scope", None)
