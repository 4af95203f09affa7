"""`/auth/api/v1`: the OAuth2 token endpoint."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from grantflow.auth import service
from grantflow.auth.schemas import OAuthErrorBody, TokenResponse
from grantflow.db import ReadSessionDep
from grantflow.runtime import RuntimeDep

router = APIRouter(tags=["auth"])

FORM_LIMIT = 64


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    responses={400: {"model": OAuthErrorBody}, 401: {"model": OAuthErrorBody}},
    summary="Issue an access token (password or client_credentials grant)",
)
async def token(
    request: Request,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
) -> TokenResponse:
    # Parameters may come form-encoded or, as some PrivX tooling sends them, in the query string.
    params = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = await request.form(max_fields=FORM_LIMIT)
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    grant_type = params.get("grant_type", "")
    basic = service.parse_basic(authorization)
    if grant_type == service.GRANT_PASSWORD:
        if not params.get("username") or "password" not in params:
            raise service.OAuthError("invalid_request", "username and password are required")
        return await service.password_grant(session, runtime, basic, params["username"], params["password"])
    if grant_type == service.GRANT_CLIENT_CREDENTIALS:
        client = basic or (params.get("client_id", ""), params.get("client_secret", ""))
        return await service.client_credentials_grant(session, runtime, client)
    if not grant_type:
        raise service.OAuthError("invalid_request", "grant_type is required")
    raise service.OAuthError("unsupported_grant_type", f"grant type {grant_type!r} is not supported")


async def on_oauth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, service.OAuthError)
    headers = {"WWW-Authenticate": 'Basic realm="grantflow"'} if exc.status_code == 401 else None
    body = OAuthErrorBody(error=exc.error, error_description=exc.description)
    return JSONResponse(status_code=exc.status_code, content=body.model_dump(), headers=headers)
