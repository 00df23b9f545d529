"""The analytics pages: the dashboard (``GET /analytics``), a sponsor's page for staff
(``GET /sponsors/{address}``) and the sponsor's own read-only copy by signed link
(``GET /l/sponsor/0/{token}``, purpose ``sponsor``, ``LDFLOW_LINK_SPONSOR_DAYS``).

Thin routes over :mod:`flows.analytics` (the query ``ldflow analytics`` runs, cached on the audit head);
the charts are SVG drawn by our Jinja macros (``templates/analytics/_charts.html``), each with its
table. Bad filters re-render the page with each field's message (400), nothing else is shown.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from flows import analytics as query
from flows.bootstrap import App
from flows.links import LinkRefused, Links, Purpose
from flows.web.auth import require_user
from flows.web.common import StaffRoute, page, templates
from states.analytics_figures import OUTCOMES, TYPES, Filter
from states.errors import InvalidInput

router = APIRouter(route_class=StaffRoute)
shared = APIRouter(include_in_schema=False)


def _app(request: Request) -> App:
    app: App = request.app.state.ldflow
    return app


def _filter(request: Request, sponsor: str | None = None) -> Filter:
    p = request.query_params
    return query.analytics_filter(date_from=p.get("from") or None, date_to=p.get("to") or None,
                                  sponsor=sponsor if sponsor is not None else p.get("sponsor") or None,
                                  owner=p.get("owner") or None, type_=p.get("type") or None)


def chart_rows(f: dict[str, Any]) -> dict[str, Any]:
    """The figures laid out for the charts (labels; the cycle rows with the two waits)."""
    cy = f["cycle_days"]
    cycle = [{"label": f"in {r['state']}", **r} for r in cy["per_state"]]
    cycle += [{"label": "to plan approval", **cy["plan_approval"]},
              {"label": "delivery → last result", **cy["delivery_to_last_result"]}]
    return {"cycle_rows": cycle,
            "kind_rows": [{"stage": r["kind"], "count": r["count"]} for r in f["redirects"]["by_kind"]],
            "level_rows": [{"label": f"{r['framework']} L{r['level']}", "total": _total(r), **r}
                           for r in f["outcomes"]["by_level"]],
            "sponsor_rows": [{"label": r["sponsor"], "total": _total(r), **r} for r in f["outcomes"]["by_sponsor"]]}


def _total(row: dict[str, Any]) -> int:
    return sum(int(row[k]) for k in OUTCOMES)


def _errors(exc: InvalidInput) -> dict[str, str]:
    return {e.field: e.message for e in exc.errors}


@router.get("/analytics", include_in_schema=False)
def dashboard(request: Request) -> Response:
    require_user(request)
    base = {"params": request.query_params, "types": TYPES, "action": "/analytics", "sponsor_links": True}
    try:
        app = _app(request)
        f = query.figures(app.store, _filter(request), _clocks(app))
    except InvalidInput as exc:
        return page(request, "analytics/dashboard.html", {**base, "f": None, "errors": _errors(exc)}, 400)
    return page(request, "analytics/dashboard.html", {**base, "f": f, "errors": {}, **chart_rows(f)})


def _clocks(app: App) -> query.SlaClocks | None:
    """The SLA policy in force and now; None (no SLA section) when the policy cannot be read — the board and
    the request page name that error."""
    from flows import sla

    policy, _error = sla.policy_or_error(app.settings)
    return query.SlaClocks(policy, app.now()) if policy is not None else None


def _share(app: App, sponsor: str) -> tuple[str, str]:
    """The sponsor's read-only link (issued at the start of today: the same link all day) and its expiry."""
    links = Links(app.settings)
    issued = datetime.combine(app.now().date(), time(), UTC)
    token = links.issue(Purpose.SPONSOR, 0, sponsor, issued)
    expires = (issued + links.lifetimes[Purpose.SPONSOR]).date().isoformat()
    return links.url(Purpose.SPONSOR, 0, token), expires


@router.get("/sponsors/{address}", include_in_schema=False)
def sponsor_page(request: Request, address: str) -> Response:
    require_user(request)
    app = _app(request)
    base = {"params": request.query_params, "types": TYPES, "action": f"/sponsors/{address}", "fixed_sponsor": True,
            "shared": False, "sponsor_links": False, "errors": {}}
    try:
        view = query.sponsor_view(app.store, _filter(request, sponsor=address), _clocks(app))
    except InvalidInput as exc:
        return page(request, "message.html", {"title": "Nothing to show", "message": "; ".join(
            f"{e.field}: {e.message}" for e in exc.errors)}, 400 if not any(
            e.field == "sponsor" for e in exc.errors) else 404)
    url, expires = _share(app, view["sponsor"])
    return page(request, "analytics/sponsor.html", {**base, "view": view, "share_url": url, "expires": expires,
                                                    **chart_rows(view["figures"])})


@shared.get("/l/sponsor/0/{token}")
def sponsor_link(request: Request, token: str) -> Response:
    """The sponsor's own page, read-only, by the signed link (no session: nothing on it acts)."""
    app = _app(request)
    links = Links(app.settings)
    try:
        link = links.read(token, Purpose.SPONSOR, 0, app.now())
        view = query.sponsor_view(app.store, Filter(sponsor=link.person), _clocks(app))
    except LinkRefused as exc:
        return templates.TemplateResponse(request, "links/problem.html", {"title": exc.title, "message": str(exc)},
                                          status_code=exc.status)
    except InvalidInput:
        return templates.TemplateResponse(request, "links/problem.html", {
            "title": "Nothing here", "message": "No request has this sponsor any more."}, status_code=404)
    return templates.TemplateResponse(request, "analytics/sponsor.html", {
        "view": view, "shared": True, "expires": link.expires_at.date().isoformat(), "params": {}, "errors": {},
        "sponsor_links": False, **chart_rows(view["figures"])})
