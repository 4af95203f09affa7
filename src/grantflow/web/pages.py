"""What every page shares: templates, the signed-in viewer, the CSRF-checked form, HTML error pages and headers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData

from grantflow.auth.scopes import Scope
from grantflow.db import transaction
from grantflow.errors import GrantflowError, as_unavailable
from grantflow.runtime import Runtime, RuntimeDep
from grantflow.web import sessions
from grantflow.web.security import PAGE_HEADERS, check_csrf_token, check_same_origin
from grantflow.web.sessions import Viewer

COOKIE = "grantflow_session"

templates = Environment(
    loader=PackageLoader("grantflow.web", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
    auto_reload=False,  # package files, unchanged while the process runs: no stat per page
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(moment: datetime | None) -> Markup:
    """A time as the page shows it: UTC in the markup, turned into the viewer's zone by app.js."""
    if moment is None:
        return Markup("&mdash;")
    utc = moment.strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(moment.isoformat(), utc, utc)


templates.filters["when"] = _when


class SignInRequired(Exception):
    """The page needs a signed-in person; they come back to `path` after signing in."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def render(
    request: Request, template: str, viewer: Viewer | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page, with what the layout needs: the viewer, their menu and the CSRF token for forms."""
    html = templates.get_template(template).render(
        request_path=request.url.path,
        viewer=viewer,
        menu=menu(viewer),
        csrf_token=viewer.csrf_token if viewer else "",
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def menu(viewer: Viewer | None) -> list[tuple[str, str]]:
    """The sections this viewer may use; an item they may not use is not shown (and its page says 403)."""
    if viewer is None:
        return []
    items = [("/request-access", "Request access"), ("/requests", "My requests"), ("/access", "My access")]
    items.append(("/approvals", "Approvals"))
    p = viewer.principal
    if p.has(Scope.WORKFLOWS_MANAGE):
        items.append(("/admin/workflows", "Workflows"))
    if p.has(Scope.ROLES_MANAGE, Scope.USERS_MANAGE):
        items.append(("/admin/people", "Roles and users"))
    if p.has(Scope.SOURCES_VIEW, Scope.SOURCES_MANAGE):
        items.append(("/admin/sources", "Sign-in sources"))
    if p.has(Scope.WORKFLOWS_MANAGE):
        items.append(("/admin/settings", "Settings"))
    if p.is_admin:
        items += [("/admin/outbox", "Outbox"), ("/admin/audit", "Audit")]
    return items


async def load_viewer(request: Request, runtime: Runtime) -> Viewer | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    now = runtime.clock.now()
    async with transaction(runtime.sessionmaker, writes=False) as session:
        found = await sessions.find(session, token, runtime.config, now)
        if found is None:
            return None
        viewer = await sessions.viewer_of(session, *found, now)
        stale = sessions.needs_touch(found[0], now)
    if stale:
        async with transaction(runtime.sessionmaker, writes=True) as session:
            await sessions.touch(session, viewer.token_hash, now)
    return viewer


async def _optional_viewer(request: Request, runtime: RuntimeDep) -> Viewer | None:
    return await load_viewer(request, runtime)


async def _signed_in(request: Request, viewer: Annotated[Viewer | None, Depends(_optional_viewer)]) -> Viewer:
    if viewer is None:
        # Back to the page asked for; a form posted without a session has no page of its own to return to.
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path if request.method == "GET" else "/")
    return viewer


async def _checked_form(request: Request, viewer: Annotated[Viewer, Depends(_signed_in)]) -> FormData:
    """The posted form, once it has shown it comes from our own page in this session."""
    check_same_origin(request.headers)
    form = await request.form()
    sent = form.get("csrf_token")
    check_csrf_token(sent if isinstance(sent, str) else request.headers.get("x-csrf-token"), viewer.csrf_token)
    return form


OptionalViewer = Annotated[Viewer | None, Depends(_optional_viewer)]
SignedIn = Annotated[Viewer, Depends(_signed_in)]
CheckedForm = Annotated[FormData, Depends(_checked_form)]


def redirect(path: str) -> RedirectResponse:
    """After a POST, the page to show next (303: the browser GETs it)."""
    return RedirectResponse(path, status_code=303)


class PageRoute(APIRoute):
    """Pages answer HTML: a sign-in redirect, an error page with the PrivX message, and the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handle(request)
            except SignInRequired as needed:
                response = RedirectResponse(f"/sign-in?next={quote(needed.path)}", status_code=303)
            except GrantflowError as error:
                viewer = await load_viewer(request, request.app.state.runtime)
                response = _error_page(request, viewer, error)
            except Exception as failure:
                unavailable = as_unavailable(failure)
                if unavailable is None:
                    raise
                response = _error_page(request, None, unavailable)  # who is signed in cannot be read now
            response.headers.update(PAGE_HEADERS)
            return response

        return page


def _error_page(request: Request, viewer: Viewer | None, error: GrantflowError) -> Response:
    response = render(
        request, "error.html", viewer, status_code=error.status_code, error=error, status=error.status_code
    )
    response.headers.update(error.headers or {})
    return response


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
