"""Signing in to the web UI with an OpenID provider: authorization code with PKCE, `state` and `nonce`.

Nothing is stored until the provider has signed the person in: the state, nonce, PKCE verifier and return path
travel in a cookie sealed with GRANTFLOW_SECRET_KEY (HttpOnly, SameSite=Lax so the provider's redirect brings it
back, ten minutes). The return must carry that state; the ID token must carry that nonce, and each nonce signs in
once (identity.service.record_sign_in).
"""

from __future__ import annotations

import hmac
import json
import uuid
from datetime import timedelta

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from grantflow.db import transaction
from grantflow.engine_settings import service as settings_service
from grantflow.errors import Duplicate, InvalidRequestData, NotFound
from grantflow.identity import directory, oidc
from grantflow.identity import service as identity_service
from grantflow.identity.models import SourceKind
from grantflow.identity.schemas import OidcConnection
from grantflow.runtime import Runtime, RuntimeDep
from grantflow.web.pages import PageRoute
from grantflow.web.security import safe_return_path
from grantflow.web.signin import signed_in

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FLOW_COOKIE = "grantflow_oidc"
FLOW_PATH = "/sign-in/oidc"
FLOW_LIFETIME = timedelta(minutes=10)


async def _redirect_uri(request: Request, runtime: Runtime) -> str:
    """The callback as the provider must send browsers to it: under the public address when one is set."""
    async with transaction(runtime.sessionmaker, writes=False) as session:
        public = (await settings_service.get_settings(session)).privx_backend_address.rstrip("/")
    base = public or str(request.base_url).rstrip("/")
    return f"{base}{FLOW_PATH}/callback"


async def _provider(runtime: Runtime, source_id: uuid.UUID) -> tuple[OidcConnection, str]:
    async with transaction(runtime.sessionmaker, writes=False) as session:
        source = await identity_service.get_source(session, source_id)
    if source.kind != SourceKind.OIDC or not source.enabled:
        raise NotFound("no such sign-in provider", property="source_id")
    return identity_service.oidc_connection_of(source, runtime.secret_box)


@router.get(f"{FLOW_PATH}/start/{{source_id}}")
async def start(request: Request, source_id: uuid.UUID, runtime: RuntimeDep, next: str = "/") -> Response:
    settings, _ = await _provider(runtime, source_id)
    redirect_uri = await _redirect_uri(request, runtime)
    try:
        started = await oidc.start(settings, redirect_uri)
    except oidc.OidcError as failed:
        raise InvalidRequestData(f"the sign-in provider cannot be used now: {failed}", property="source_id") from None
    flow = {
        "source": str(source_id),
        "state": started.state,
        "nonce": started.nonce,
        "verifier": started.verifier,
        "next": safe_return_path(next),
        "redirect_uri": redirect_uri,
        "expires": (runtime.clock.now() + FLOW_LIFETIME).timestamp(),
    }
    response = RedirectResponse(started.location, status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        runtime.secret_box.seal(json.dumps(flow)),
        max_age=int(FLOW_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=redirect_uri.startswith("https://"),
        path=FLOW_PATH,
    )
    return response


def _flow(request: Request, runtime: Runtime, state: str) -> dict[str, str]:
    sealed = request.cookies.get(FLOW_COOKIE, "")
    opened = runtime.secret_box.open_untrusted(sealed) if sealed else None
    if opened is None:
        raise InvalidRequestData("this sign-in was not started here, or took too long: sign in again", property="state")
    flow: dict[str, str] = json.loads(opened)
    if float(flow["expires"]) <= runtime.clock.now().timestamp():
        raise InvalidRequestData("this sign-in took too long: sign in again", property="state")
    if not hmac.compare_digest(flow["state"].encode(), state.encode()):
        raise InvalidRequestData("this sign-in does not belong to this browser: sign in again", property="state")
    return flow


@router.get(f"{FLOW_PATH}/callback")
async def callback(request: Request, runtime: RuntimeDep, state: str = "", code: str = "", error: str = "") -> Response:
    flow = _flow(request, runtime, state)
    if error or not code:
        reason = (error or "no code")[:100]
        raise InvalidRequestData(f"the sign-in provider did not sign you in ({reason})", property="code")
    source_id = uuid.UUID(flow["source"])
    settings, secret = await _provider(runtime, source_id)
    try:
        token = await oidc.redeem(settings, secret, code, flow["redirect_uri"], flow["verifier"])
        claims = await oidc.PROVIDERS.verify(settings, token, runtime.clock.now(), nonce=flow["nonce"])
        user = await directory.oidc_sign_in(runtime, source_id, claims, flow["nonce"])
    except oidc.OidcError as refused:
        raise InvalidRequestData(f"the sign-in was refused: {refused}", property="id_token") from None
    except Duplicate as taken:
        if taken.property == "nonce":
            raise InvalidRequestData("this sign-in was already used: sign in again", property="nonce") from None
        raise InvalidRequestData(taken.message, property="username") from None  # the name is another user's
    if user.disabled:
        raise InvalidRequestData("your account is disabled", property="user")
    response = await signed_in(request, runtime, user.id, flow["next"])
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response
