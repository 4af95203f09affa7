"""OpenID Connect: discovery, the authorization-code flow with PKCE, and ID-token validation.

An ID token is accepted only when its header names an allowed public-key algorithm (never `none`, never an HMAC
that a public key could be abused as the secret of), its key comes from the provider's JWKS (fetched again, at
most every 10 s, when a `kid` is unknown: the provider rotated its keys), and `iss`, `aud`, `exp` and `iat` (and
the `nonce`, in the browser flow) are right by grantflow's clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt

from grantflow.identity.schemas import OidcConnection

LEEWAY_SECONDS = 60
JWKS_RETRY_SECONDS = 10.0
METADATA_SECONDS = 3600.0


class OidcError(Exception):
    """The provider or its token cannot be used; the message is safe to show and log (no token in it)."""


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass
class _Keys:
    keys: dict[str, jwt.PyJWK]
    fetched: float


class Providers:
    """What this process knows of each provider: its metadata and its keys, by issuer."""

    def __init__(self) -> None:
        self._metadata: dict[str, tuple[Metadata, float]] = {}
        self._keys: dict[str, _Keys] = {}

    async def metadata(self, settings: OidcConnection) -> Metadata:
        known = self._metadata.get(settings.issuer)
        if known is not None and time.monotonic() - known[1] < METADATA_SECONDS:
            return known[0]
        document = await _get_json(settings, f"{settings.issuer}/.well-known/openid-configuration")
        try:
            found = Metadata(
                issuer=str(document["issuer"]).rstrip("/"),
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
            )
        except KeyError as missing:
            raise OidcError(f"the provider's discovery document has no {missing}") from None
        if found.issuer != settings.issuer:
            raise OidcError(f"the discovery document names another issuer ({found.issuer})")
        self._metadata[settings.issuer] = (found, time.monotonic())
        return found

    async def key(self, settings: OidcConnection, kid: str | None) -> jwt.PyJWK:
        known = self._keys.get(settings.issuer)
        stale = known is None or time.monotonic() - known.fetched > JWKS_RETRY_SECONDS
        if (known is None or kid not in known.keys) and stale:
            document = await _get_json(settings, (await self.metadata(settings)).jwks_uri)
            keys = {}
            for entry in document.get("keys", []):
                try:
                    keys[str(entry.get("kid", ""))] = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue  # a key of a kind grantflow does not use
            known = _Keys(keys, time.monotonic())
            self._keys[settings.issuer] = known
        if known is None or kid not in known.keys:
            raise OidcError("the token is signed with a key the provider does not publish")
        return known.keys[kid or ""]

    async def verify(
        self, settings: OidcConnection, token: str, now: datetime, nonce: str | None = None
    ) -> dict[str, Any]:
        """The ID token's claims, or OidcError saying what is wrong with it."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise OidcError("the token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm not in settings.allowed_algorithms:
            raise OidcError(f"the token's algorithm {algorithm!r} is not allowed")
        key = await self.key(settings, header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[str(algorithm)],
                audience=settings.client_id,
                issuer=settings.issuer,
                options={
                    "require": ["iss", "aud", "exp", "iat", "sub"],
                    "verify_exp": False,  # checked below against grantflow's clock
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as invalid:
            raise OidcError(f"the token is not valid: {type(invalid).__name__}") from None
        _check_times(claims, now.timestamp())
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
            raise OidcError("the token's nonce is not the one this sign-in sent")
        return claims


def _check_times(claims: dict[str, Any], moment: float) -> None:
    expires, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expires, int | float) or not isinstance(issued, int | float):
        raise OidcError("the token's times are malformed")
    if expires + LEEWAY_SECONDS < moment:
        raise OidcError("the token has expired")
    if issued - LEEWAY_SECONDS > moment or claims.get("nbf", 0) - LEEWAY_SECONDS > moment:
        raise OidcError("the token is not valid yet")


async def _get_json(settings: OidcConnection, url: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=settings.timeout_seconds, follow_redirects=False) as client:
            answer = await client.get(url)
    except httpx.HTTPError as failed:
        raise OidcError(f"the provider cannot be reached: {type(failed).__name__}") from None
    if answer.status_code != 200:
        raise OidcError(f"the provider answered {answer.status_code} for {url}")
    try:
        document = answer.json()
    except ValueError:
        raise OidcError(f"the provider's answer for {url} is not JSON") from None
    if not isinstance(document, dict):
        raise OidcError(f"the provider's answer for {url} is not a JSON object")
    return document


PROVIDERS = Providers()


# -- the browser flow -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    """A sign-in sent to the provider: where the browser goes, and what its return must prove."""

    location: str
    state: str
    nonce: str
    verifier: str


async def start(settings: OidcConnection, redirect_uri: str) -> Started:
    state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": settings.scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    endpoint = (await PROVIDERS.metadata(settings)).authorization_endpoint
    return Started(f"{endpoint}?{urlencode(query)}", state, nonce, verifier)


async def redeem(settings: OidcConnection, secret: str, code: str, redirect_uri: str, verifier: str) -> str:
    """The ID token for an authorization code (client_secret_basic, with the PKCE verifier)."""
    endpoint = (await PROVIDERS.metadata(settings)).token_endpoint
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    try:
        async with httpx.AsyncClient(timeout=settings.timeout_seconds) as client:
            answer = await client.post(endpoint, data=form, auth=(settings.client_id, secret))
    except httpx.HTTPError as failed:
        raise OidcError(f"the provider cannot be reached: {type(failed).__name__}") from None
    if answer.status_code != 200:
        raise OidcError(f"the provider refused the code ({answer.status_code})")
    token = (
        answer.json().get("id_token") if answer.headers.get("content-type", "").startswith("application/json") else None
    )
    if not isinstance(token, str):
        raise OidcError("the provider's answer has no id_token")
    return token


async def test_provider(settings: OidcConnection, secret: str) -> tuple[dict[str, str], str]:
    """Discovery and keys, stage by stage; ("", details) when both work, else a hint."""
    details = {"issuer": settings.issuer}
    try:
        metadata = await PROVIDERS.metadata(settings)
        details["discovery"] = "ok"
        await _get_json(settings, metadata.jwks_uri)
        details["keys"] = "ok"
    except OidcError as failed:
        details["error"] = str(failed)
        return details, "check the issuer URL (it must match the provider's own `issuer` exactly)"
    details["client_secret"] = "set" if secret else "not set (a confidential client needs one)"
    return details, ""
