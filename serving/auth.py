"""API keys with scopes: ``Authorization: Bearer KEY``.

A key is ``ck_<id>_<secret>``, shown once. Redis stores, in the hash ``keys.api_keys()``, field ``<id>``
(public, used only for lookup) → JSON ``{sha256, scope, name, created_at}`` where ``sha256`` is the hex
digest of the whole key; the plain key is never stored. A request's key is hashed and compared with
the stored digest by ``hmac.compare_digest`` (constant time: the lookup by id reveals nothing secret).
Records are cached in-process for ``CACHE_TTL_S`` seconds so authentication does not cost a Redis
round trip per request; a revoked key stops working within that time. Scopes are ordered: admin
implies write implies read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable

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
    """Key id → (digest, scope, expiry) for keys seen recently; bounded so random ids cannot grow it."""

    def __init__(self, ttl_s: float = CACHE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[str, str, float]] = {}

    def get(self, key_id: str) -> tuple[str, str] | None:
        """Return ``(digest, scope)`` if cached and fresh."""
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        if entry[2] < time.monotonic():
            self._entries.pop(key_id, None)
            return None
        return entry[0], entry[1]

    def put(self, key_id: str, digest: str, scope: str) -> None:
        """Remember a record for ``ttl_s`` seconds."""
        if len(self._entries) >= _CACHE_MAX:
            self._entries.clear()
        self._entries[key_id] = (digest, scope, time.monotonic() + self.ttl_s)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
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


async def _scope_of(request: Request, token: str) -> str | None:
    key_id = _key_id(token)
    if key_id is None:
        return None
    state = request.app.state
    cache: KeyCache | None = getattr(state, "key_cache", None)
    if cache is None:
        cache = state.key_cache = KeyCache()
    record = cache.get(key_id)
    if record is None:
        try:
            stored = await state.redis.hget(state.keys.api_keys(), key_id)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"cannot check the API key: Redis is unreachable ({exc})") from exc
        if stored is None:
            return None
        parsed = orjson.loads(stored)
        record = (str(parsed.get("sha256", "")), str(parsed.get("scope", "")))
        cache.put(key_id, *record)
    digest, scope = record
    return scope if hmac.compare_digest(digest, hash_key(token)) else None


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
    needed = _RANK[scope]

    async def dependency(request: Request) -> str:
        token = _bearer(request)
        granted = await _scope_of(request, token)
        if granted is None:
            raise AuthError(401, "unknown API key: it was never created here or has been revoked", "invalid_api_key")
        if _RANK.get(granted, -1) < needed:
            raise AuthError(
                403, f"this API key has scope {granted!r}; this endpoint needs {scope!r}", "insufficient_scope"
            )
        return granted

    dependency.__name__ = f"require_{scope}"
    dependency.required_scope = scope  # type: ignore[attr-defined]  # read by required_scope()
    return dependency


def required_scope(dependency: object) -> str | None:
    """Return the scope a ``require_scope`` dependency demands, ``None`` for any other callable."""
    return getattr(dependency, "required_scope", None)
