"""Web UI sessions: sign in with an API key, get an HttpOnly, SameSite=Strict session cookie.

The session lives in Redis (``keys.ui_session``) with the key's id, its sha256 digest and scope, and a CSRF
token; the API key itself is never stored. Every page checks that the key still exists with the same digest,
so revoking the key ends its sessions. State-changing forms carry the session's CSRF token, compared in
constant time; SameSite=Strict already keeps other sites' forms from sending the cookie, the token is the
second lock.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import quote

import orjson
from fastapi import HTTPException, Request
from redis.exceptions import RedisError
from starlette.responses import Response

from recsys.clock import utcnow
from recsys.exceptions import StoreUnavailable
from serving.auth import hash_key, key_id_of, scope_of_key, scope_rank

COOKIE = "centric_session"
SESSION_TTL_S = 8 * 3600


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the key's scope and the CSRF token its forms must send."""

    session_id: str
    key_id: str
    scope: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        """Whether the key may change state (audience export, grants)."""
        return scope_rank(self.scope) >= scope_rank("admin")


class LoginRequired(HTTPException):
    """303 to the sign-in page (rendered by the app's HTTP error handler with the ``Location`` header)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(303, "sign in first", headers={"Location": f"/ui/login?next={quote(next_path, safe='/')}"})


class Forbidden(HTTPException):
    """403: the session's key lacks the scope, or the CSRF token is missing or wrong."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(403, detail)
        self.code = code


async def sign_in(request: Request, api_key: str) -> tuple[str, Session] | None:
    """Check ``api_key``; on success store a new session and return ``(session id, session)``, else ``None``."""
    key_id = key_id_of(api_key)
    if key_id is None:
        return None
    scope = await scope_of_key(request, api_key)
    if scope is None:
        return None
    session = Session(secrets.token_urlsafe(32), key_id, scope, secrets.token_urlsafe(32))
    record = {
        "key_id": key_id,
        "digest": hash_key(api_key.strip()),
        "scope": scope,
        "csrf": session.csrf,
        "created_at": utcnow().isoformat(),
    }
    state = request.app.state
    try:
        await state.redis.set(state.keys.ui_session(session.session_id), orjson.dumps(record), ex=SESSION_TTL_S)
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot store the session: Redis is unreachable ({exc})") from exc
    return session.session_id, session


async def current(request: Request) -> Session | None:
    """Return the request's live session, or ``None`` (no cookie, expired, or its key revoked)."""
    sid = request.cookies.get(COOKIE)
    if not sid or len(sid) > 100:
        return None
    state = request.app.state
    try:
        raw = await state.redis.get(state.keys.ui_session(sid))
        if raw is None:
            return None
        record = orjson.loads(raw)
        stored = await state.redis.hget(state.keys.api_keys(), record["key_id"])
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot check the session: Redis is unreachable ({exc})") from exc
    if stored is None or not hmac.compare_digest(str(orjson.loads(stored).get("sha256", "")), record["digest"]):
        return None
    return Session(sid, record["key_id"], record["scope"], record["csrf"])


async def require_session(request: Request) -> Session:
    """Dependency: the session, or a redirect to the sign-in page."""
    session = await current(request)
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return session


def check_csrf(session: Session, token: str | None) -> None:
    """Raise ``Forbidden`` unless ``token`` is the session's CSRF token."""
    # bytes: compare_digest refuses (TypeError, a 500) a str with non-ASCII characters, which any form can send
    if not token or not hmac.compare_digest(token.encode(), session.csrf.encode()):
        raise Forbidden("missing or wrong CSRF token: reload the page and submit the form again", "csrf_failed")


def require_admin(session: Session) -> None:
    """Raise ``Forbidden`` unless the session's key has the admin scope."""
    if not session.is_admin:
        raise Forbidden(
            f"this needs an admin API key; you signed in with a {session.scope!r} key", "insufficient_scope"
        )


async def sign_out(request: Request, session: Session) -> None:
    """Delete the session."""
    state = request.app.state
    try:
        await state.redis.delete(state.keys.ui_session(session.session_id))
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"cannot end the session: Redis is unreachable ({exc})") from exc


def set_cookie(request: Request, response: Response, session_id: str) -> None:
    """Set the session cookie: HttpOnly, SameSite=Strict, Path=/ui, Secure when the request came over https."""
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=SESSION_TTL_S,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response) -> None:
    """Remove the session cookie."""
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict", secure=request.url.scheme == "https")
