"""Rendering of UI pages: one Jinja2 environment, number filters, and the headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from serving.ui import charts, views
from serving.ui.sessions import Session

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["number"] = charts.number
templates.env.filters["money"] = charts.money
templates.env.filters["pct"] = charts.pct
templates.env.filters["age"] = charts.age
templates.env.globals["charts"] = charts
templates.env.globals["views"] = views

# No script at all, no inline style, nothing from another origin; pages never framed.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    # customer data: never stored by the browser or a proxy
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
NAV = (
    ("overview", "/ui", "Overview"),
    ("customers", "/ui/customers", "Customer 360"),
    ("models", "/ui/models", "Model quality"),
    ("campaigns", "/ui/campaigns", "Campaigns & offers"),
    ("loyalty", "/ui/loyalty", "Loyalty"),
)


def compile_templates() -> None:
    """Compile every template now (the app's warm-up), so that no first page view pays for it."""
    for name in templates.env.list_templates():
        templates.env.get_template(name)


def page(
    request: Request, name: str, context: dict[str, Any], *, session: Session | None, status: int = 200
) -> HTMLResponse:
    """Render ``name`` with the navigation, the session (scope, CSRF token) and the no-store headers."""
    ctx = {"request": request, "session": session, "nav": NAV, **context}
    response = templates.TemplateResponse(request, name, ctx, status_code=status)
    response.headers.update(PAGE_HEADERS)
    return response


def problem(request: Request, session: Session | None, status: int, title: str, detail: str) -> HTMLResponse:
    """Render an error page (never raw JSON) with ``status``."""
    return page(request, "error.html", {"active": "", "title": title, "detail": detail}, session=session, status=status)
