"""Signing in and out of the web UI with a username and password (the token endpoint's checks), and the page
that offers the organisation's OpenID providers too (external.py)."""

from __future__ import annotations

import secrets
import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from grantflow.db import transaction
from grantflow.engine_settings import service as settings_service
from grantflow.identity import service as identity_service
from grantflow.identity.models import SourceKind
from grantflow.oauth import service as oauth_service
from grantflow.runtime import Runtime, RuntimeDep
from grantflow.user import service as user_service
from grantflow.web import sessions
from grantflow.web.pages import (
    COOKIE,
    CheckedForm,
    OptionalViewer,
    PageRoute,
    SignedIn,
    form_text,
    redirect,
    render,
)
from grantflow.web.security import check_csrf_token, check_same_origin, safe_return_path

router = APIRouter(route_class=PageRoute, include_in_schema=False)
# Before there is a session, the sign-in form carries a token that must match this cookie (no login CSRF).
SIGN_IN_COOKIE = "grantflow_sign_in"


async def _sign_in_page(
    request: Request, next_path: str, error: str = "", username: str = "", status: int = 200
) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)
    async with transaction(request.app.state.runtime.sessionmaker, writes=False) as session:
        providers = [s for s in await identity_service.list_sources(session, SourceKind.OIDC) if s.enabled]
    page = render(
        request,
        "sign_in.html",
        None,
        status_code=status,
        next_path=next_path,
        error=error,
        username=username,
        sign_in_token=token,
        providers=providers,
    )
    _set_cookie(request, page, SIGN_IN_COOKIE, token, max_age=3600)
    return page


def _set_cookie(
    request: Request, response: Response, name: str, value: str, max_age: int | None = None, secure: bool = False
) -> None:
    secure = secure or request.url.scheme == "https"
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/")


@router.get("/sign-in")
async def sign_in_form(request: Request, viewer: OptionalViewer, next: str = "/") -> Response:
    next_path = safe_return_path(next)
    if viewer is not None:
        return redirect(next_path)
    return await _sign_in_page(request, next_path)


@router.post("/sign-in")
async def sign_in(request: Request, runtime: RuntimeDep) -> Response:
    check_same_origin(request.headers)
    form = await request.form()
    check_csrf_token(form_text(form, "sign_in_token"), request.cookies.get(SIGN_IN_COOKIE) or "")
    username, password = form_text(form, "username"), form.get("password")
    next_path = safe_return_path(form_text(form, "next"))
    if not username or not isinstance(password, str) or not password:
        return await _sign_in_page(request, next_path, "Enter your username and password.", username, status=400)
    source = request.client.host if request.client else "unknown"
    try:
        user = await oauth_service.authenticate_user(runtime, username, password, source)
    except oauth_service.OAuthError as refused:
        message = (
            "Too many failed sign-ins. Wait a few minutes and try again."
            if refused.status_code == 429
            else "The username or password is not right."
        )
        return await _sign_in_page(request, next_path, message, username, status=refused.status_code)
    response = await signed_in(request, runtime, user.id, next_path)
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
    return response


async def signed_in(request: Request, runtime: Runtime, user_id: uuid.UUID, next_path: str) -> Response:
    """Open a web session for the user and send the browser on to `next_path` with its cookie."""
    now = runtime.clock.now()
    async with transaction(runtime.sessionmaker, writes=True) as session:
        token = await sessions.open_session(session, await user_service.get_user(session, user_id), runtime.config, now)
        # Behind a TLS-terminating proxy grantflow sees http; the public address says whether browsers use https.
        public = (await settings_service.get_settings(session)).privx_backend_address
    secure = public.startswith("https://")
    response: Response = RedirectResponse(next_path, status_code=303)
    _set_cookie(request, response, COOKIE, token, max_age=runtime.config.web_session_hours * 3600, secure=secure)
    return response


@router.post("/sign-out")
async def sign_out(viewer: SignedIn, _form: CheckedForm, runtime: RuntimeDep) -> Response:
    async with transaction(runtime.sessionmaker, writes=True) as session:
        await sessions.end(session, viewer.token_hash)
    response = redirect("/sign-in")
    response.delete_cookie(COOKIE, path="/")
    return response
