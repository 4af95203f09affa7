"""`/auth/api/v1`: token endpoint, authorization-code login, logout, JWKS."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse, RedirectResponse

from grantflow.errors import ErrorCode
from grantflow.http.deps import AnyUser
from grantflow.http.responses import NO_BODY
from grantflow.oauth import service
from grantflow.oauth.schemas import (
    LoginErrorBody,
    LoginIn,
    LoginOut,
    OAuthErrorBody,
    TokenExchangeIn,
    TokenResponse,
)
from grantflow.runtime import RuntimeDep

router = APIRouter(tags=["auth"])

FORM_LIMIT = 64
# The PrivX code each OAuth error also carries (decisions.md §10): the Go SDK reads only `error_code`.
PRIVX_CODES = {
    "invalid_client": ErrorCode.PERMISSION_DENIED,
    "invalid_grant": ErrorCode.PERMISSION_DENIED,
    "unauthorized_client": ErrorCode.PERMISSION_DENIED,
    "invalid_request": ErrorCode.INVALID_REQUEST_DATA,
    "unsupported_grant_type": ErrorCode.INVALID_REQUEST_DATA,
    "unsupported_response_type": ErrorCode.INVALID_REQUEST_DATA,
}
OAUTH_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": OAuthErrorBody},
    401: {"model": OAuthErrorBody},
    429: {"model": OAuthErrorBody},
}
# Routes whose parameters FastAPI validates: a malformed request gets the PrivX error object instead.
LOGIN_ERRORS: dict[int | str, dict[str, object]] = {**OAUTH_ERRORS, 400: {"model": LoginErrorBody}}


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=OAUTH_ERRORS,
    summary="Issue tokens: password, client_credentials, authorization_code (PKCE) or refresh_token grant",
)
async def token(
    request: Request, runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None
) -> TokenResponse:
    # Parameters may come form-encoded or, as some PrivX tooling sends them, in the query string.
    params = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = await request.form(max_fields=FORM_LIMIT)
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    grant_type = params.get("grant_type", "")
    basic = service.parse_basic(authorization)
    source = _source(request)
    match grant_type:
        case service.GRANT_PASSWORD:
            if not params.get("username") or "password" not in params:
                raise service.OAuthError("invalid_request", "username and password are required")
            return await service.password_grant(runtime, basic, params["username"], params["password"], source)
        case service.GRANT_CLIENT_CREDENTIALS:
            client = basic or (params.get("client_id", ""), params.get("client_secret", ""))
            return await service.client_credentials_grant(runtime, client, source)
        case service.GRANT_REFRESH_TOKEN:
            client_id = basic[0] if basic else params.get("client_id", "")
            return await service.refresh_grant(runtime, basic, client_id, params.get("refresh_token", ""))
        case service.GRANT_AUTHORIZATION_CODE:
            client_id = basic[0] if basic else params.get("client_id", "")
            return await service.authorization_code_grant(
                runtime,
                basic,
                client_id,
                params.get("redirect_uri", ""),
                params.get("code", ""),
                params.get("code_verifier", ""),
            )
        case "":
            raise service.OAuthError("invalid_request", "grant_type is required")
    raise service.OAuthError("unsupported_grant_type", f"grant type {grant_type!r} is not supported")


@router.get(
    "/oauth/authorize",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses=LOGIN_ERRORS,
    summary="Open an authorization-code login (PKCE S256 required); the Location carries the login token",
)
async def authorize(
    runtime: RuntimeDep,
    client_id: Annotated[str, Query()] = "",
    redirect_uri: Annotated[str, Query()] = "",
    response_type: Annotated[str, Query()] = "",
    state: Annotated[str, Query()] = "",
    code_challenge: Annotated[str, Query()] = "",
    code_challenge_method: Annotated[str, Query()] = "",
) -> RedirectResponse:
    target = await service.authorize(
        runtime,
        service.AuthorizeRequest(client_id, redirect_uri, response_type, state, code_challenge, code_challenge_method),
    )
    return RedirectResponse(target, status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.post("/login", response_model=LoginOut, responses=LOGIN_ERRORS, summary="Log in to an open authorization")
async def login(request: Request, runtime: RuntimeDep, body: LoginIn) -> LoginOut:
    code, state = await service.login(runtime, body.username, body.password, body.token, _source(request))
    return LoginOut(code=code, state=state)


@router.post(
    "/token/login",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=LOGIN_ERRORS,
    summary="Exchange an ID token of a configured OpenID provider for a grantflow token (PrivX token exchange)",
)
async def token_login(request: Request, runtime: RuntimeDep, body: TokenExchangeIn) -> TokenResponse:
    return await service.exchange_token(runtime, body.token, body.client_id, _source(request))


@router.post("/logout", summary="End the caller's session: its refresh tokens stop working", **NO_BODY)
async def logout(principal: AnyUser, runtime: RuntimeDep) -> Response:
    if principal.session_id is not None:
        await service.end_session(runtime, principal.session_id)
    return Response(status_code=status.HTTP_200_OK)


@router.get("/jwks", summary="Public keys that verify grantflow's access tokens (JWK Set)")
async def jwks(runtime: RuntimeDep) -> dict[str, list[dict[str, str]]]:
    await runtime.keyring.refresh_if_stale(runtime.sessionmaker)
    return runtime.keyring.jwks()


async def on_oauth_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, service.OAuthError)
    headers = {"WWW-Authenticate": 'Basic realm="grantflow"'} if exc.status_code == 401 else {}
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    body = OAuthErrorBody(
        error=exc.error,
        error_description=exc.description,
        # A throttled login (429) is refused for now, whatever OAuth calls it.
        error_code=ErrorCode.PERMISSION_DENIED
        if exc.status_code == 429
        else PRIVX_CODES.get(exc.error, ErrorCode.BAD_REQUEST),
        error_message=exc.description,
    )
    return JSONResponse(status_code=exc.status_code, content=body.model_dump(), headers=headers or None)
