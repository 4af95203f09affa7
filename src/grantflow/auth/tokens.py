"""Access tokens: Ed25519-signed JWTs (RFC 9068 shape) with kid-identified keys."""

from __future__ import annotations

import base64
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from grantflow.auth.models import SigningKey
from grantflow.errors import Unauthorized
from grantflow.kit.secretbox import SecretBox

ALGORITHM = "EdDSA"
# The OAuth clients grantflow issues tokens to, and so the audiences (`aud`) a token it accepts may name.
EXTERNAL_CLIENT_ID = "privx-external"
UI_CLIENT_ID = "privx-ui"
AUDIENCES = (EXTERNAL_CLIENT_ID, UI_CLIENT_ID)
RELOAD_INTERVAL_SECONDS = 5.0
# How often a replica re-reads the keys, so that it signs with a key another replica rotated in.
SIGNING_KEY_REFRESH_SECONDS = 60.0

SessionFactory = async_sessionmaker[AsyncSession]


# Verified tokens remembered per process: a signature check and a JWT parse cost more than the rest of a small
# request's token handling, and a client sends the same token many times. Expiry is still checked on every use;
# when the cache is full the oldest entry makes room.
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    client_id: str
    session_id: uuid.UUID | None
    scopes: frozenset[str]
    not_before: int = 0
    expires: int = 0


def new_signing_key(box: SecretBox, now: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return SigningKey(
        kid=uuid.uuid4().hex, private_key_sealed=box.seal(private_pem), public_key_pem=public_pem, created=now
    )


class KeyRing:
    """Signing key and verification keys, loaded from the database and shared by every replica."""

    def __init__(self, box: SecretBox, issuer: str, leeway_seconds: int) -> None:
        self._box = box
        self._issuer = issuer
        self._leeway = leeway_seconds
        self._signing: tuple[str, Ed25519PrivateKey] | None = None
        self._public: dict[str, Ed25519PublicKey] = {}
        self._loaded_at = 0.0
        self._verified: OrderedDict[str, TokenClaims] = OrderedDict()

    async def load(self, session: AsyncSession) -> None:
        keys = (await session.scalars(select(SigningKey).order_by(SigningKey.created))).all()
        self._public = {}
        self._verified.clear()  # a key may be gone: verify its tokens afresh
        for key in keys:
            public = serialization.load_pem_public_key(key.public_key_pem.encode())
            assert isinstance(public, Ed25519PublicKey)
            self._public[key.kid] = public
        current = [k for k in keys if k.retired is None]
        if current:
            private = serialization.load_pem_private_key(self._box.open(current[-1].private_key_sealed).encode(), None)
            assert isinstance(private, Ed25519PrivateKey)
            self._signing = (current[-1].kid, private)
        self._loaded_at = time.monotonic()

    async def refresh_if_stale(self, session_factory: SessionFactory) -> None:
        if time.monotonic() - self._loaded_at > SIGNING_KEY_REFRESH_SECONDS:
            async with session_factory() as session:
                await self.load(session)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys as a JWK Set (RFC 7517, OKP keys of RFC 8037)."""
        keys = []
        for kid, public in self._public.items():
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
            keys.append({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}

    def issue(
        self,
        *,
        user_id: uuid.UUID,
        client_id: str,
        scopes: frozenset[str],
        permissions: str,
        now: datetime,
        lifetime: int,
        session_id: uuid.UUID | None = None,
    ) -> str:
        if self._signing is None:
            raise RuntimeError("no signing key loaded")
        kid, private = self._signing
        issued = int(now.timestamp())
        claims = {
            "iss": self._issuer,
            "aud": client_id,
            "sub": str(user_id),
            "userid": str(user_id),
            "domain": client_id,
            "sessionid": str(session_id or uuid.uuid4()),
            "jti": uuid.uuid4().hex,
            "iat": issued,
            "nbf": issued,
            "exp": issued + lifetime,
            "scope": " ".join(sorted(scopes)),
            "permissions": permissions,
        }
        return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": kid, "typ": "at+jwt"})

    async def verify(self, token: str, session_factory: SessionFactory, now: datetime) -> TokenClaims:
        """Check signature, algorithm, issuer, audience, expiry and not-before; any failure is the same 401."""
        claims = self._verified.get(token)
        if claims is None:
            claims = await self._verify_signed(token, session_factory)
            self._verified[token] = claims
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        moment = now.timestamp()
        if claims.expires + self._leeway < moment:
            raise Unauthorized("access token expired")
        if claims.not_before - self._leeway > moment:
            raise Unauthorized("access token not yet valid")
        return claims

    async def _verify_signed(self, token: str, session_factory: SessionFactory) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("malformed access token") from exc
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str):
            raise Unauthorized("access token has an unsupported algorithm or no key id")
        key = await self._public_key(kid, session_factory)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=AUDIENCES,
                # Time claims are checked by verify, on every use, against the injected clock.
                options={
                    "require": ["exp", "iat", "iss", "aud", "sub"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid access token: {type(exc).__name__}") from exc
        expires, not_before = claims["exp"], claims.get("nbf", 0)
        if not isinstance(expires, int) or not isinstance(not_before, int):
            raise Unauthorized("access token has malformed time claims")
        try:
            user_id = uuid.UUID(claims["sub"])
        except ValueError as exc:
            raise Unauthorized("invalid access token subject") from exc
        return TokenClaims(
            user_id=user_id,
            client_id=str(claims["aud"]),
            session_id=_uuid_or_none(claims.get("sessionid")),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            not_before=not_before,
            expires=expires,
        )

    async def _public_key(self, kid: str, session_factory: SessionFactory) -> Ed25519PublicKey:
        key = self._public.get(kid)
        if key is None and time.monotonic() - self._loaded_at > RELOAD_INTERVAL_SECONDS:
            # A key made by another replica since we loaded; reloads are rate-limited against kid spraying.
            async with session_factory() as session:
                await self.load(session)
            key = self._public.get(kid)
        if key is None:
            raise Unauthorized("access token signed by an unknown key")
        return key


async def rotate(session: AsyncSession, box: SecretBox, now: datetime, keep_retired: timedelta) -> SigningKey:
    """A new signing key; the old ones keep verifying, and keys retired longer than `keep_retired` go."""
    await session.execute(
        delete(SigningKey).where(SigningKey.retired.is_not(None), SigningKey.retired < now - keep_retired)
    )
    for key in await session.scalars(select(SigningKey).where(SigningKey.retired.is_(None))):
        key.retired = now
    key = new_signing_key(box, now)
    session.add(key)
    await session.flush()
    return key


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
