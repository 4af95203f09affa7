"""Send outbox messages over one SMTP connection per batch, and tell temporary failures from permanent ones."""

from __future__ import annotations

import ssl
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType

import aiosmtplib
import httpx

from grantflow.engine_settings.schemas import SmtpAuthMode, SmtpProtocol
from grantflow.notification.compose import header_text
from grantflow.notification.models import OutboxMessage
from grantflow.notification.smtp import SmtpServer, TokenCache, TokenRefused, client_for, tls_context

SENDER_NAME = "grantflow"
AUTH_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")
CONNECTION_ERRORS = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, ssl.SSLError, OSError)


class DeliveryFailure(Exception):
    """Why a message was not accepted. `connection` failures (before MAIL FROM) hit every message of the batch."""

    def __init__(self, reason: str, *, permanent: bool, connection: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.permanent, self.connection = reason, permanent, connection


def _by_code(code: int, text: str, connection: bool = False) -> DeliveryFailure:
    """RFC 5321: 4xx is worth another try, 5xx is not."""
    return DeliveryFailure(f"{code} {text}".strip(), permanent=500 <= code < 600, connection=connection)


def build_message(message: OutboxMessage, sender: str, now: datetime) -> EmailMessage:
    """The MIME message; every header value is stripped of CR/LF, so no user text can add a header."""
    mail = EmailMessage(policy=SMTP_POLICY)
    mail["From"] = Address(display_name=SENDER_NAME, addr_spec=sender)
    mail["To"] = Address(display_name=header_text(message.recipient_name), addr_spec=message.recipient_address)
    mail["Subject"] = header_text(message.subject)
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = message.message_id
    mail["In-Reply-To"] = message.thread_id
    mail["References"] = message.thread_id
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text_body)
    mail.add_alternative(message.html_body, subtype="html")
    return mail


class SmtpBatch:
    """One connection, opened on the first message and reused; reopened if the server drops it between messages."""

    def __init__(
        self,
        server: SmtpServer,
        tokens: TokenCache,
        ca_file: Path | None,
        timeout_seconds: float,
        allowed_hosts: frozenset[str] = frozenset(),
    ) -> None:
        self.server, self.tokens, self.allowed_hosts = server, tokens, allowed_hosts
        self._context = tls_context(server.insecure, ca_file)
        self._timeout = timeout_seconds
        self._client: aiosmtplib.SMTP | None = None

    async def __aenter__(self) -> SmtpBatch:
        return self

    async def __aexit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    async def send(self, mail: EmailMessage, recipient: str) -> None:
        """Hand one message to the server for one recipient, or raise DeliveryFailure."""
        client = await self._connected()
        try:
            await client.send_message(mail, sender=self.server.sender, recipients=[recipient])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            raise _by_code(refused.code, f"RCPT refused: {refused.message}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # the server is closing the connection
                await self.close()
            raise _by_code(exc.code, exc.message) from exc
        except CONNECTION_ERRORS as exc:
            await self.close()
            raise DeliveryFailure(f"connection lost: {exc}", permanent=False) from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None or not client.is_connected:
            return
        try:
            await client.quit()
        except aiosmtplib.SMTPException:
            client.close()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        if self.allowed_hosts and self.server.host.lower() not in self.allowed_hosts:
            raise DeliveryFailure(
                f"{self.server.host} is not in GRANTFLOW_SMTP_ALLOWED_HOSTS", permanent=True, connection=True
            )
        client = client_for(self.server, self._context, self._timeout)
        try:
            await client.connect()
            await client.ehlo()
            if self.server.protocol == SmtpProtocol.STARTTLS:
                await client.starttls(tls_context=self._context)
                await client.ehlo()
            await self._authenticate(client)
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise _by_code(exc.code, exc.message, connection=True) from exc
        except (aiosmtplib.SMTPException, *CONNECTION_ERRORS) as exc:
            client.close()
            raise DeliveryFailure(f"cannot open the SMTP session: {exc}", permanent=False, connection=True) from exc
        self._client = client
        return client

    async def _authenticate(self, client: aiosmtplib.SMTP) -> None:
        server = self.server
        if server.auth_mode == SmtpAuthMode.OAUTH2:
            try:
                token = await self.tokens.token(server)
            except TokenRefused as exc:
                raise DeliveryFailure(str(exc), permanent=True, connection=True) from exc
            except httpx.HTTPError as exc:
                raise DeliveryFailure(f"token endpoint unreachable: {exc}", permanent=False, connection=True) from exc
            try:
                await client.auth_xoauth2(server.sender, token)
            except aiosmtplib.SMTPAuthenticationError:
                self.tokens.forget(server)
                raise
            return
        if server.auth_mode == SmtpAuthMode.PASSWORD:
            offered = {m.upper() for m in client.server_auth_methods}
            mechanism = next((m for m in AUTH_MECHANISMS if m in offered), None)
            if mechanism is None:
                raise DeliveryFailure("the server offers no usable AUTH mechanism", permanent=True, connection=True)
            login = {"PLAIN": client.auth_plain, "LOGIN": client.auth_login, "CRAM-MD5": client.auth_crammd5}
            await login[mechanism](server.username, server.password)
