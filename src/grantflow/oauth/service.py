"""OAuth2 grants: who gets a token, with which scopes, and how sessions continue and end.

The token endpoints open their own transactions instead of taking the request's: the attempt is counted in a
short write transaction (throttle.py), the credential is read in a read transaction and checked (argon2,
deliberately slow, a bounded number at a time) after it has closed, so no login holds a database connection or
SQLite's write lock while hashing; what must be written (refresh tokens, revocations) goes in another short
transaction, so a revocation is committed even when the request then fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import jwt
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.auth.tokens import AUDIENCES, EXTERNAL_CLIENT_ID
from grantflow.db import transaction
from grantflow.errors import Duplicate
from grantflow.grant import service as grant_service
from grantflow.identity import directory, oidc
from grantflow.identity import service as identity_service
from grantflow.identity.models import SourceKind
from grantflow.kit.passwords import HashingBusy
from grantflow.oauth import throttle
from grantflow.oauth.models import AuthorizationFlow, OAuthClient, RefreshToken
from grantflow.oauth.schemas import TokenResponse
from grantflow.role import service as role_service
from grantflow.runtime import Runtime
from grantflow.user import service as user_service
from grantflow.user.models import DIRECTORY_TYPES, SourceType, User

GRANT_PASSWORD = "password"
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"

FLOW_LIFETIME = timedelta(minutes=5)
MAX_FAILURES_PER_ACCOUNT = 10
MAX_FAILURES_PER_SOURCE = 100


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: the token endpoints answer with this body, not the PrivX one."""

    def __init__(self, error: str, description: str, status_code: int = 400, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status_code = status_code
        self.retry_after = retry_after


def digest(token: str) -> str:
    """Tokens and codes are stored only as their SHA-256: a database dump cannot replay them."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_basic(authorization: str | None) -> tuple[str, str] | None:
    """HTTP Basic credentials as (id, secret), or None when the header is absent or not Basic."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


# -- issuing ----------------------------------------------------------------------------------------------------


async def _issue(
    session: AsyncSession,
    runtime: Runtime,
    user: User,
    client_id: str,
    session_id: uuid.UUID | None = None,
    refresh: bool = True,
) -> TokenResponse:
    """An access token whose scopes come from the roles the user holds right now, and a refresh token."""
    now = runtime.clock.now()
    await runtime.keyring.refresh_if_stale(runtime.sessionmaker)
    await grant_service.activate_armed_for_user(session, user.id, now)  # a floating grant starts at first use
    scopes, roles = await role_service.scopes_of(session, user.id, now)
    permissions = sorted({p for r in roles for p in r.permissions})
    session_id = session_id or uuid.uuid4()
    lifetime = runtime.config.access_token_lifetime_seconds
    token = runtime.keyring.issue(
        user_id=user.id,
        client_id=client_id,
        session_id=session_id,
        scopes=frozenset(scopes),
        permissions=",".join([r.name for r in roles if r.system] + permissions),
        now=now,
        lifetime=lifetime,
    )
    refresh_token = None
    if refresh:
        refresh_token = secrets.token_urlsafe(32)
        session.add(
            RefreshToken(
                token_hash=digest(refresh_token),
                session_id=session_id,
                user_id=user.id,
                client_id=client_id,
                expires=now + timedelta(seconds=runtime.config.refresh_token_lifetime_seconds),
                created=now,
            )
        )
        await session.flush()
    return TokenResponse(
        access_token=token, expires_in=lifetime, scope=" ".join(sorted(scopes)), refresh_token=refresh_token
    )


# -- throttling and credential checks ----------------------------------------------------------------------------


def _counters(account: str | None, source: str) -> list[throttle.Counter]:
    """Per source address always; per account when one is named."""
    counters = [throttle.source(source, MAX_FAILURES_PER_SOURCE)]
    if account is not None:
        counters.append(throttle.account(account, MAX_FAILURES_PER_ACCOUNT))
    return counters


@asynccontextmanager
async def _attempt(runtime: Runtime, counters: list[throttle.Counter]) -> AsyncIterator[throttle.Attempt]:
    """One login attempt under the throttle (429 when refused); the block calls `succeeded()` when it was right."""
    try:
        async with throttle.attempt(runtime.sessionmaker, counters, runtime.clock.now()) as outcome:
            yield outcome
    except throttle.Throttled as refused:  # raised only on entry, before the block runs
        raise OAuthError(
            "invalid_request", "too many failed logins; try again later", 429, retry_after=refused.retry_after
        ) from refused


async def _verify(runtime: Runtime, stored_hash: str | None, secret: str) -> bool:
    """argon2 in turn with other logins, outside any transaction; a full queue is a 503 to try again."""
    with _hashing_turn():
        return await runtime.passwords.verify_async(stored_hash, secret)


@contextmanager
def _hashing_turn() -> Iterator[None]:
    try:
        yield
    except HashingBusy as busy:
        raise OAuthError("temporarily_unavailable", busy.message, 503, retry_after=busy.retry_after) from busy


async def authenticate_user(
    runtime: Runtime, username: str, password: str, source: str, *, directories: bool = True
) -> User:
    """A person's username and password, under the login throttle; OAuthError (400, 429 or 503) when refused.

    The attempt is counted before the password is checked, and no database connection is held while it is. A
    name grantflow does not know is tried against the LDAP sources unless `directories` is off (API clients).
    """
    if "\x00" in username or "\x00" in password:
        raise OAuthError("invalid_grant", "invalid username or password")  # no account is named so
    async with _attempt(runtime, _counters(username, source)) as attempt:
        async with transaction(runtime.sessionmaker, writes=False) as session:
            credential = await user_service.find_credential(session, runtime.secret_box, username)
        known = credential.user
        if known is not None and known.source_type in DIRECTORY_TYPES:
            user = await _directory_sign_in(runtime, username, password, known)
        else:
            with _hashing_turn():
                user = await user_service.verify_credential(runtime.passwords, credential, password)
            if user is None and known is None and directories:  # perhaps a directory user's first sign-in
                user = await _directory_sign_in(runtime, username, password, None)
        if user is None or user.disabled:
            raise OAuthError("invalid_grant", "invalid username or password")
        attempt.succeeded()
    return user


async def _directory_sign_in(runtime: Runtime, username: str, password: str, known: User | None) -> User | None:
    """A directory user's password is checked by binding to their directory (never a local hash)."""
    try:
        return await directory.sign_in(runtime, username, password, known)
    except directory.DirectoryUnavailable as down:
        raise OAuthError(
            "temporarily_unavailable", "the directory cannot be reached; try again", 503, retry_after=30
        ) from down


async def _authenticate_client(
    runtime: Runtime, client: tuple[str, str] | None, grant_type: str, source: str
) -> OAuthClient:
    if client is None:
        raise OAuthError("invalid_client", "HTTP Basic client authentication is required", 401)
    if "\x00" in client[0] or "\x00" in client[1]:
        raise OAuthError("invalid_client", "client authentication failed", 401)  # no client is named so
    # Per source only: OAuth client ids are public (privx-external), so counting failures against the client
    # would let anyone lock every login out.
    async with _attempt(runtime, _counters(None, source)) as attempt:
        async with transaction(runtime.sessionmaker, writes=False) as session:
            found = await session.get(OAuthClient, client[0])
        if not await _verify(runtime, found.secret_hash if found else None, client[1]) or found is None:
            raise OAuthError("invalid_client", "client authentication failed", 401)
        attempt.succeeded()
    _check_grant_allowed(found, grant_type)
    return found


async def _check_client(runtime: Runtime, oauth_client: OAuthClient | None, basic: tuple[str, str] | None) -> None:
    """A public client (no secret) names itself; a confidential one must prove it with HTTP Basic."""
    if oauth_client is None:
        raise OAuthError("invalid_client", "unknown client", 401)
    if oauth_client.secret_hash is None:
        return
    if basic is None or basic[0] != oauth_client.client_id:
        raise OAuthError("invalid_client", "client authentication failed", 401)
    if not await _verify(runtime, oauth_client.secret_hash, basic[1]):
        raise OAuthError("invalid_client", "client authentication failed", 401)


def _check_grant_allowed(client: OAuthClient, grant_type: str) -> None:
    if grant_type not in client.grant_types:
        raise OAuthError("unauthorized_client", f"grant {grant_type} is not allowed for this client")


# -- grants -----------------------------------------------------------------------------------------------------


async def password_grant(
    runtime: Runtime, client: tuple[str, str] | None, username: str, password: str, source: str
) -> TokenResponse:
    oauth_client = await _authenticate_client(runtime, client, GRANT_PASSWORD, source)
    user = await authenticate_user(runtime, username, password, source)
    async with transaction(runtime.sessionmaker, writes=True) as session:
        return await _issue(session, runtime, user, oauth_client.client_id)


async def client_credentials_grant(runtime: Runtime, client: tuple[str, str], source: str) -> TokenResponse:
    """An API client authenticates as itself: client_id is its id, client_secret its secret. No refresh token."""
    try:
        user = await authenticate_user(runtime, client[0], client[1], source, directories=False)
    except OAuthError as exc:
        if exc.status_code == 429:
            raise
        raise OAuthError("invalid_client", "client authentication failed", 401) from exc
    if user.source_type != SourceType.API_CLIENT:
        raise OAuthError("invalid_client", "client authentication failed", 401)
    async with transaction(runtime.sessionmaker, writes=True) as session:
        return await _issue(session, runtime, user, EXTERNAL_CLIENT_ID, refresh=False)


async def refresh_grant(runtime: Runtime, client: tuple[str, str] | None, client_id: str, token: str) -> TokenResponse:
    """Rotate: the old refresh token is spent, a new one issued. A spent one used again ends its whole session."""
    now = runtime.clock.now()
    async with transaction(runtime.sessionmaker, writes=True) as session:
        stored = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == digest(token)).with_for_update()
        )
        if stored is None or stored.revoked is not None or stored.expires <= now:
            raise OAuthError("invalid_grant", "the refresh token is not valid")
        if stored.used is None and client_id == stored.client_id:
            await _check_client(runtime, await session.get(OAuthClient, stored.client_id), client)
            user = await session.get(User, stored.user_id)
            if user is None or user.disabled:
                raise OAuthError("invalid_grant", "the refresh token's user no longer exists or is disabled")
            stored.used = now
            return await _issue(session, runtime, user, stored.client_id, session_id=stored.session_id)
        reused = stored.used is not None
    if reused:
        await end_session(runtime, stored.session_id)
        raise OAuthError("invalid_grant", "the refresh token was already used; the session has been ended")
    raise OAuthError("invalid_grant", "the refresh token belongs to another client")


async def end_session(runtime: Runtime, session_id: uuid.UUID) -> None:
    """Every refresh token of the session stops working (logout, or a stolen token detected)."""
    async with transaction(runtime.sessionmaker, writes=True) as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.session_id == session_id, RefreshToken.revoked.is_(None))
            .values(revoked=runtime.clock.now())
        )


async def end_user_sessions(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """Every refresh token of the user stops working, in the caller's transaction (their password was changed)."""
    await session.execute(
        update(RefreshToken).where(RefreshToken.user_id == user_id, RefreshToken.revoked.is_(None)).values(revoked=now)
    )


async def exchange_token(runtime: Runtime, token: str, client_id: str, source: str) -> TokenResponse:
    """PrivX's token exchange (`token/login`): an ID token of a configured OpenID provider, for a grantflow
    token of the user it names (made or updated from its claims, groups and roles included)."""
    async with _attempt(runtime, _counters(None, source)) as attempt:
        user = await _user_of_id_token(runtime, token, client_id)
        attempt.succeeded()
    async with transaction(runtime.sessionmaker, writes=True) as session:
        return await _issue(session, runtime, user, client_id)


async def _user_of_id_token(runtime: Runtime, token: str, client_id: str) -> User:
    if client_id not in AUDIENCES:
        raise OAuthError("invalid_client", "unknown client", 401)
    try:
        issuer = str(jwt.decode(token, options={"verify_signature": False}).get("iss", "")).rstrip("/")
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "the token is not a JWT") from None
    async with transaction(runtime.sessionmaker, writes=False) as session:
        providers = await identity_service.list_sources(session, SourceKind.OIDC)
    provider = next((p for p in providers if p.enabled and p.settings.get("issuer") == issuer), None)
    if provider is None:
        raise OAuthError("invalid_grant", "the token's issuer is not a configured identity source")
    settings, _ = identity_service.oidc_connection_of(provider, runtime.secret_box)
    try:
        claims = await oidc.PROVIDERS.verify(settings, token, runtime.clock.now())
    except oidc.OidcError as refused:
        raise OAuthError("invalid_grant", str(refused)) from None
    try:
        user = await directory.oidc_sign_in(runtime, provider.id, claims, None)
    except Duplicate as taken:  # the token's username is a user of another source
        raise OAuthError("invalid_grant", taken.message) from None
    if user.disabled:
        raise OAuthError("invalid_grant", "the user is disabled")
    return user


# -- authorization code with PKCE (the flow privx-sdk-go performs) -------------------------------------------------


@dataclass(frozen=True)
class AuthorizeRequest:
    client_id: str
    redirect_uri: str
    response_type: str
    state: str
    code_challenge: str
    code_challenge_method: str


async def authorize(runtime: Runtime, request: AuthorizeRequest) -> str:
    """Open a login: returns the redirect target, whose `token` query value the client passes to /login.

    Nothing is stored: the login token is the authorization request itself, sealed with the secret key. A row is
    written only when somebody has logged in with it, so strangers cannot grow a table by calling authorize.
    """
    if request.response_type != "code":
        raise OAuthError("unsupported_response_type", "response_type must be code")
    if request.code_challenge_method != "S256" or not 43 <= len(request.code_challenge) <= 128:
        raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
    if not request.redirect_uri or len(request.redirect_uri) > 2000 or len(request.state) > 500:
        raise OAuthError("invalid_request", "redirect_uri is required; state is at most 500 characters")
    async with transaction(runtime.sessionmaker, writes=False) as session:
        client = await session.get(OAuthClient, request.client_id)
    if client is None:
        raise OAuthError("invalid_client", "unknown client", 401)
    _check_grant_allowed(client, GRANT_AUTHORIZATION_CODE)
    opened = {**asdict(request), "expires": (runtime.clock.now() + FLOW_LIFETIME).isoformat()}
    login_token = runtime.secret_box.seal(json.dumps(opened))
    return f"/auth/api/v1/login?{urlencode({'token': login_token, 'state': request.state})}"


def _opened_login(runtime: Runtime, login_token: str) -> tuple[AuthorizeRequest, datetime] | None:
    """The authorization request a login token seals and when it expires; None when it is not one of ours."""
    opened = runtime.secret_box.open_untrusted(login_token) if len(login_token) <= 8000 else None
    if opened is None:
        return None
    fields = json.loads(opened)
    expires = datetime.fromisoformat(fields.pop("expires"))
    return AuthorizeRequest(**fields), expires


async def login(runtime: Runtime, username: str, password: str, login_token: str, source: str) -> tuple[str, str]:
    """The user's credentials for an open login: returns (code, state). Each login token logs in once."""
    opened = _opened_login(runtime, login_token)
    if opened is None or opened[1] <= runtime.clock.now():
        raise OAuthError("invalid_grant", "the login token is unknown, used or expired")
    request, expires = opened
    async with transaction(runtime.sessionmaker, writes=False) as session:
        used = await session.get(AuthorizationFlow, digest(login_token))
    if used is not None:
        raise OAuthError("invalid_grant", "the login token is unknown, used or expired")
    user = await authenticate_user(runtime, username, password, source)
    code = secrets.token_urlsafe(32)
    async with transaction(runtime.sessionmaker, writes=True) as session:
        session.add(
            AuthorizationFlow(
                login_token_hash=digest(login_token),
                code_hash=digest(code),
                user_id=user.id,
                client_id=request.client_id,
                redirect_uri=request.redirect_uri,
                state=request.state,
                code_challenge=request.code_challenge,
                expires=expires,
            )
        )
        try:
            await session.flush()
        except IntegrityError:  # a concurrent login with the same token came first
            raise OAuthError("invalid_grant", "the login token was already used") from None
    return code, request.state


def _pkce_matches(verifier: str, challenge: str) -> bool:
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return hmac.compare_digest(computed, challenge)


async def authorization_code_grant(
    runtime: Runtime, client: tuple[str, str] | None, client_id: str, redirect_uri: str, code: str, verifier: str
) -> TokenResponse:
    """Spend a code once, for the client and redirect_uri that asked for it, with the matching PKCE verifier."""
    now = runtime.clock.now()
    async with transaction(runtime.sessionmaker, writes=True) as session:
        flow = await session.scalar(
            select(AuthorizationFlow).where(AuthorizationFlow.code_hash == digest(code)).with_for_update()
        )
        if flow is None or flow.spent is not None or flow.expires <= now or flow.user_id is None:
            raise OAuthError("invalid_grant", "the code is unknown, used or expired")
        if flow.client_id != client_id or flow.redirect_uri != redirect_uri:
            raise OAuthError("invalid_grant", "client_id or redirect_uri differ from the authorization request")
        if not _pkce_matches(verifier, flow.code_challenge):
            raise OAuthError("invalid_grant", "the code_verifier does not match the code_challenge")
        await _check_client(runtime, await session.get(OAuthClient, client_id), client)
        flow.spent = now
        user = await session.get(User, flow.user_id)
        if user is None:
            raise OAuthError("invalid_grant", "the user no longer exists")
        return await _issue(session, runtime, user, client_id)
