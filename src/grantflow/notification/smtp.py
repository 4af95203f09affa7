"""What testsmtp and mail delivery share: the server to talk to, TLS set-up and the OAuth2 token (decisions.md §6)."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib
import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.engine_settings import service as settings_service
from grantflow.engine_settings.schemas import SettingsOut, SmtpAuthMode, SmtpProtocol, SmtpProvider
from grantflow.kit.secretbox import SecretBox

# The password mechanisms grantflow speaks, best first; probe and delivery choose the same one.
AUTH_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")


def auth_mechanism(client: aiosmtplib.SMTP) -> str | None:
    """The best password mechanism the server offers, or None."""
    offered = {m.upper() for m in client.server_auth_methods}
    return next((m for m in AUTH_MECHANISMS if m in offered), None)


async def password_login(client: aiosmtplib.SMTP, mechanism: str, username: str, password: str) -> None:
    """AUTH with `mechanism` (one of AUTH_MECHANISMS)."""
    login = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login, "CRAM-MD5": client.auth_crammd5}[mechanism]
    await login(username, password)


DEFAULT_PORTS = {SmtpProtocol.PLAIN: 25, SmtpProtocol.STARTTLS: 587, SmtpProtocol.TLS: 465}
# Provider presets for OAUTH2: Microsoft's endpoint names the tenant, so only its scope has a default.
TOKEN_ENDPOINTS = {SmtpProvider.GOOGLE: "https://oauth2.googleapis.com/token"}
TOKEN_SCOPES = {
    SmtpProvider.GOOGLE: "https://mail.google.com/",
    SmtpProvider.MICROSOFT: "https://outlook.office365.com/.default",
}
LOCAL_HOSTNAME = "grantflow.localdomain"
TOKEN_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class SmtpServer:
    """One SMTP server and how to log in to it; the password is the unsealed secret and never leaves the process."""

    host: str
    port: int
    protocol: SmtpProtocol
    auth_mode: SmtpAuthMode
    username: str
    password: str = field(repr=False)
    insecure: bool
    sender: str
    provider: SmtpProvider = SmtpProvider.GENERIC
    token_endpoint: str = ""
    token_scope: str = ""

    @classmethod
    def from_settings(cls, values: SettingsOut, password: str) -> SmtpServer:
        return cls(
            host=values.smtp_server,
            port=values.smtp_server_port,
            protocol=values.smtp_server_protocol,
            auth_mode=values.smtp_authentication_mode,
            username=values.smtp_server_username,
            password=password,
            insecure=values.smtp_server_insecure_verify,
            sender=values.smtp_sender_address,
            provider=values.smtp_provider,
            token_endpoint=values.smtp_provider_token_endpoint,
            token_scope=values.smtp_provider_token_scope,
        )

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.protocol]

    @property
    def effective_token_endpoint(self) -> str:
        return self.token_endpoint or TOKEN_ENDPOINTS.get(self.provider, "")

    @property
    def effective_token_scope(self) -> str:
        return self.token_scope or TOKEN_SCOPES.get(self.provider, "")


def tls_context(insecure: bool, ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def client_for(server: SmtpServer, context: ssl.SSLContext, timeout: float) -> aiosmtplib.SMTP:
    """An unconnected client: implicit TLS for protocol TLS; STARTTLS is issued by the caller, after EHLO."""
    return aiosmtplib.SMTP(
        hostname=server.host,
        port=server.effective_port,
        use_tls=server.protocol == SmtpProtocol.TLS,
        start_tls=False,
        tls_context=context,
        timeout=timeout,
        local_hostname=LOCAL_HOSTNAME,
    )


async def hang_up(client: aiosmtplib.SMTP) -> None:
    """QUIT, then drop the connection at once and give the loop the turn that closes the socket.

    A TLS connection closed politely finishes its shutdown in later callbacks of the event loop; a probe or a worker
    that returns first (a test's loop ends) leaves the socket to the garbage collector. Once the server has answered
    QUIT, or failed to, nothing is lost by aborting.
    """
    transport = client.transport
    try:
        if client.is_connected:
            await client.quit()
    except aiosmtplib.SMTPException:
        pass
    finally:
        client.close()
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        await asyncio.sleep(0)  # the abort's connection_lost, queued before this task resumes, closes the socket


class TokenRefused(Exception):
    """The token endpoint answered, but gave no token; the message says why, without any secret."""


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_in: int


async def fetch_token(server: SmtpServer) -> Token:
    """An OAuth2 client-credentials token: client id = user name, secret = password. Raises httpx.HTTPError too."""
    form = {"grant_type": "client_credentials", "client_id": server.username, "client_secret": server.password}
    if server.effective_token_scope:
        form["scope"] = server.effective_token_scope
    async with httpx.AsyncClient(timeout=TOKEN_TIMEOUT_SECONDS) as http:
        response = await http.post(server.effective_token_endpoint, data=form)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code != 200 or not isinstance(body.get("access_token"), str):
        reason = f"{body.get('error', response.status_code)}: {body.get('error_description', '')}".strip(": ")
        raise TokenRefused(f"the token endpoint refused: {reason}")
    expires_in = body.get("expires_in")
    return Token(str(body["access_token"]), expires_in if isinstance(expires_in, int) else 3600)


class TokenCache:
    """Tokens for XOAUTH2, kept until a minute before they expire, per server and credentials."""

    MARGIN_SECONDS = 60

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}

    async def token(self, server: SmtpServer) -> str:
        key = self._key(server)
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        token = await fetch_token(server)
        self._tokens[key] = (token.value, time.monotonic() + token.expires_in - self.MARGIN_SECONDS)
        return token.value

    def forget(self, server: SmtpServer) -> None:
        """Drop the token the server refused, so the next attempt fetches a fresh one."""
        self._tokens.pop(self._key(server), None)

    @staticmethod
    def _key(server: SmtpServer) -> str:
        parts = (server.effective_token_endpoint, server.username, server.effective_token_scope, server.password)
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()


async def stored_server(session: AsyncSession, box: SecretBox) -> tuple[SettingsOut, SmtpServer]:
    """The stored settings and the SMTP server they name, password unsealed: what mail delivery uses."""
    values = await settings_service.get_settings(session)
    return values, SmtpServer.from_settings(values, await settings_service.stored_password(session, box))
