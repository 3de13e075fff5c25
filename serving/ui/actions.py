"""``/ui/campaigns`` and ``/ui/loyalty``: pages with forms. Reading needs a session; anything that changes state or
exports customer lists (audience CSV, bulk grants) needs an admin key and the session's CSRF token."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from recsys.clock import utcnow
from recsys.exceptions import CentricError, Conflict, NoActiveSnapshot, NotFound
from serving.deps import StoreDep
from serving.services import bulk_grants, campaign_view, snapshots
from serving.services import dashboard as service
from serving.services import offers as offers_service
from serving.ui import render, sessions
from serving.ui.pages import CacheDep, LoyaltyDep, SessionDep
from serving.ui.sessions import Session

router = APIRouter(prefix="/ui", include_in_schema=False)
MAX_UPLOAD_BYTES = 2 << 20


async def require_admin_form(session: SessionDep, csrf: Annotated[str, Form(max_length=100)] = "") -> Session:
    """Dependency of every state-changing form: the session, its CSRF token, an admin key (else a 403 page)."""
    sessions.check_csrf(session, csrf)
    sessions.require_admin(session)
    return session


AdminDep = Annotated[Session, Depends(require_admin_form)]


async def _campaign_context(
    store: Any, loyalty: Any, cache: service.DashboardCache, offer: str, budget: float | None, channel: str
) -> dict[str, Any]:
    now = utcnow()
    try:
        snap = await service.snapshot_overview(store, now)
    except NoActiveSnapshot:
        return {"active": "campaigns", "snapshot": None}
    offers, experiments = await service.cached_campaigns(cache, store, loyalty, snap, now)
    ctx: dict[str, Any] = {
        "active": "campaigns",
        "snapshot": snap,
        "offers": offers,
        "experiments": experiments,
        "offer": offer,
        "budget": budget,
        "channel": channel,
        "audience": None,
        "error": None,
    }
    if offer and budget is not None:
        try:
            audience = await offers_service.select_campaign_audience(
                store, offer, budget=budget, channel=channel or None
            )
        except CentricError as exc:
            ctx["error"] = str(exc)
        else:
            ctx["audience"] = {
                "customers": audience.customers.height,
                "expected_redemptions": audience.expected_redemptions,
                "expected_value": audience.expected_value,
                "top": audience.customers.head(10).to_dicts(),
            }
    return ctx


@router.get("/campaigns")
async def campaigns(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    loyalty: LoyaltyDep,
    cache: CacheDep,
    offer: Annotated[str, Query(max_length=64)] = "",
    budget: Annotated[float | None, Query(ge=0, le=10_000_000)] = None,
    channel: Annotated[str, Query(pattern=r"^(|web|app|email|push)$")] = "",
) -> Response:
    """Offers with budget, impressions, redemptions and suppressions; experiment arms; the audience builder."""
    ctx = await _campaign_context(store, loyalty, cache, offer, budget, channel)
    return render.page(request, "campaigns.html", ctx, session=session)


@router.post("/campaigns/audience.csv")
async def audience_csv(
    request: Request,
    session: AdminDep,
    store: StoreDep,
    offer: Annotated[str, Form(min_length=1, max_length=64)],
    budget: Annotated[float, Form(ge=0, le=10_000_000)],
    channel: Annotated[str, Form(pattern=r"^(|web|app|email|push)$")] = "",
) -> Response:
    """Download the audience as CSV (admin, CSRF): the same rows and columns as ``centric campaign select``."""
    audience = await offers_service.select_campaign_audience(store, offer, budget=budget, channel=channel or None)
    name = f"audience-{offer}-{budget:g}.csv".replace("/", "_")
    return Response(
        campaign_view.audience_csv(audience),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"', **render.PAGE_HEADERS},
    )


async def _loyalty_context(loyalty: Any, cache: service.DashboardCache) -> dict[str, Any]:
    now = utcnow()
    summary = await service.cached_summary(cache, loyalty, now)
    history = await service.cached_history(cache, loyalty, now)
    rewards = await service.rewards(loyalty)
    return {"active": "loyalty", "summary": summary, "history": history, "rewards": rewards, "preview": None}


@router.get("/loyalty")
async def loyalty_page(request: Request, session: SessionDep, loyalty: LoyaltyDep, cache: CacheDep) -> Response:
    """Liability over time, the monthly points flow, tiers, rewards, and the bulk-grant form (admin)."""
    ctx = await _loyalty_context(loyalty, cache)
    return render.page(request, "loyalty.html", ctx, session=session)


@router.post("/loyalty/grants/preview")
async def grants_preview(
    request: Request,
    session: AdminDep,
    loyalty: LoyaltyDep,
    cache: CacheDep,
    file: Annotated[UploadFile, File()],
    reason: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    """Check an uploaded grant file and show what it would do (admin, CSRF); nothing is applied yet."""
    raw = await file.read(MAX_UPLOAD_BYTES + 1)
    ctx = await _loyalty_context(loyalty, cache)
    if len(raw) > MAX_UPLOAD_BYTES:
        upload = bulk_grants.GrantFile(problems=[f"{file.filename}: larger than {MAX_UPLOAD_BYTES >> 20} MiB"])
        text = ""
    else:
        text = raw.decode("utf-8-sig", errors="replace")
        upload = bulk_grants.parse(text, reason, file.filename or "upload")
    ctx["preview"] = {"upload": upload, "reason": reason, "text": text, "applied": None}
    return render.page(request, "loyalty.html", ctx, session=session, status=200 if not upload.problems else 422)


@router.post("/loyalty/grants/apply")
async def grants_apply(
    request: Request,
    session: AdminDep,
    loyalty: LoyaltyDep,
    cache: CacheDep,
    text: Annotated[str, Form(max_length=MAX_UPLOAD_BYTES)],
    reason: Annotated[str, Form(min_length=1, max_length=200)],
) -> Response:
    """Apply a previewed grant file (admin, CSRF); applying the same file again grants nothing more."""
    upload = bulk_grants.parse(text, reason)
    results = await bulk_grants.apply(loyalty, upload, reason, utcnow())
    await cache.forget(service.SUMMARY)
    ctx = await _loyalty_context(loyalty, cache)
    replayed = sum(r.replayed for r in results)
    ctx["preview"] = {
        "upload": upload,
        "reason": reason,
        "text": "",
        "applied": {"granted": len(results) - replayed, "replayed": replayed, "points": upload.total_points},
    }
    return render.page(request, "loyalty.html", ctx, session=session)


@router.post("/snapshots/rollback")
async def rollback(
    request: Request,
    session: AdminDep,
    store: StoreDep,
    active: Annotated[str, Form(min_length=1, max_length=64)],
) -> Response:
    """Activate the snapshot published before ``active`` (admin, CSRF), as `centric publish --rollback`; the form
    names the version it was shown as active, so submitting it twice rolls back once."""
    state = request.app.state
    settings = state.settings
    try:
        version = await asyncio.to_thread(
            snapshots.rollback,
            state.redis_url,
            state.keys,
            expected=active,
            keep=settings.snapshot_keep,
            ttl_s=settings.snapshot_ttl_days * 86_400,
        )
    except NotFound as exc:
        return render.problem(request, session, 409, "Nothing to roll back to", str(exc))
    except Conflict as exc:
        return render.problem(request, session, 409, "Not rolled back", str(exc))
    refresh = getattr(store, "refresh", None)
    if refresh is not None:
        await refresh()  # this process serves the version rolled back to at once (others within a second)
    return RedirectResponse(f"/ui/models?rolled_back={version}", status_code=303)
