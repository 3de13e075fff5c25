"""``/ui``: sign-in, overview, customer 360 and model quality pages (read scope). Handlers parse, call a service,
render; the figures come from ``serving.services.dashboard`` and ``customer360``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from recsys.clock import utcnow
from recsys.exceptions import CentricError, NoActiveSnapshot, UnknownCustomer
from serving.deps import StoreDep
from serving.routers.dashboard import CacheDep
from serving.services import customer360
from serving.services import dashboard as service
from serving.services import loyalty as loyalty_service
from serving.ui import render, sessions
from serving.ui.sessions import Session

router = APIRouter(prefix="/ui", include_in_schema=False)
SessionDep = Annotated[Session, Depends(sessions.require_session)]
LoyaltyDep = Annotated[loyalty_service.LoyaltyService, Depends(loyalty_service.get_loyalty)]
STYLESHEET = (render.HERE / "static" / "ui.css").read_bytes()


def _safe_next(target: str | None) -> str:
    # only paths of this UI: never an absolute URL (an open redirect) or a protocol-relative one
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"


@router.get("/static/ui.css")
async def stylesheet() -> Response:
    """The one stylesheet (no customer data: cacheable)."""
    return Response(
        STYLESHEET,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form."""
    return render.page(request, "login.html", {"active": "", "next": _safe_next(next), "error": None}, session=None)


@router.post("/login")
async def login(
    request: Request, api_key: Annotated[str, Form(max_length=200)], next: Annotated[str, Form(max_length=500)] = "/ui"
) -> Response:
    """Check the API key; on success set the session cookie and go to ``next``.

    A sign-in posted from another site (its ``Origin`` is not this host) is refused: it could sign a browser in
    with someone else's key (login CSRF).
    """
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        return render.problem(request, None, 403, "Not allowed", "sign in from this site's own sign-in page")
    signed = await sessions.sign_in(request, api_key)
    if signed is None:
        ctx = {"active": "", "next": _safe_next(next), "error": "That API key is not valid here (unknown or revoked)."}
        return render.page(request, "login.html", ctx, session=None, status=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    sessions.set_cookie(request, response, signed[0])
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    """End the session (CSRF-checked) and go back to the sign-in page."""
    try:
        sessions.check_csrf(session, csrf)
    except sessions.Forbidden as exc:
        return render.problem(request, session, 403, "Not signed out", str(exc.detail))
    await sessions.sign_out(request, session)
    response = RedirectResponse("/ui/login", status_code=303)
    sessions.clear_cookie(request, response)
    return response


@router.get("")
async def overview(
    request: Request, session: SessionDep, store: StoreDep, loyalty: LoyaltyDep, cache: CacheDep
) -> Response:
    """Customers, revenue, snapshot age, RFM grid, lifecycle funnel, CLV, P(alive) map, loyalty, pipeline runs."""
    pipeline_dir = service.pipeline_dir_of(request.app.state.settings)
    data = await service.overview(store, loyalty, cache, utcnow(), pipeline_dir)
    return render.page(request, "overview.html", {"active": "overview", **data}, session=session)


@router.get("/customers")
async def customer(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    loyalty: LoyaltyDep,
    id: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """Search by customer id; show the customer 360."""
    ctx: dict[str, Any] = {"active": "customers", "query": id.strip(), "view": None, "error": None}
    if ctx["query"]:
        now = utcnow()
        try:
            snap = await service.snapshot_overview(store, now)
            bgnbd = (snap["dashboard"] or {}).get("bgnbd")
            clv_model = (snap["dashboard"] or {}).get("clv_model")
        except NoActiveSnapshot:
            bgnbd = clv_model = None
        try:
            ctx["view"] = await customer360.customer_view(
                store, loyalty, ctx["query"], now, bgnbd=bgnbd, clv_model=clv_model
            )
        except UnknownCustomer as exc:
            ctx["error"] = str(exc)
            return render.page(request, "customer.html", ctx, session=session, status=404)
    return render.page(request, "customer.html", ctx, session=session)


@router.get("/models")
async def models(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    rolled_back: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Latest evaluation, its history over the kept snapshots, the CLV holdout check."""
    now = utcnow()
    try:
        snap = await service.snapshot_overview(store, now)
    except NoActiveSnapshot:
        snap = None
    history = await service.evaluation_history(request.app.state.redis, request.app.state.keys)
    ctx = {"active": "models", "snapshot": snap, "history": history, "rolled_back": rolled_back}
    return render.page(request, "models.html", ctx, session=session)


async def page_error(request: Request, exc: Exception) -> Response:
    """Render an error of a UI page as an HTML page with the right status (the API keeps its JSON errors)."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from serving.errors import status_of

    if isinstance(exc, CentricError):
        status, title, detail = status_of(exc), "Not available", str(exc)
    elif isinstance(exc, RequestValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors()[:5])
        status, title, detail = 422, "Check the form", problems
    elif isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
        title = {401: "Sign in", 403: "Not allowed", 404: "Page not found"}.get(status, "Error")
        if status == 404 and detail == "Not Found":
            detail = f"there is no page {request.url.path}"
    else:
        raise exc
    try:
        session = await sessions.current(request)
    except CentricError:
        session = None
    return render.problem(request, session, status, title, detail)
