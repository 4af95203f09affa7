"""Send outbox messages over one SMTP connection per batch, and tell temporary failures from permanent ones."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Awaitable
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from pathlib import Path
from types import TracebackType

import aiosmtplib
import httpx
from aiosmtplib.email import flatten_message

from grantflow.engine_settings.schemas import SmtpAuthMode, SmtpProtocol
from grantflow.notification.addresses import header_text
from grantflow.notification.models import OutboxMessage
from grantflow.notification.smtp import (
    SmtpServer,
    TokenCache,
    TokenRefused,
    auth_mechanism,
    client_for,
    hang_up,
    password_login,
    tls_context,
)

SENDER_NAME = "grantflow"
CONNECTION_ERRORS = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, ssl.SSLError, OSError)


class DeliveryFailure(Exception):
    """Why a message was not accepted. `connection` failures (before MAIL FROM) hit every message of the batch."""

    def __init__(self, reason: str, *, permanent: bool, connection: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.permanent, self.connection = reason, permanent, connection


def _by_code(code: int, text: str, connection: bool = False) -> DeliveryFailure:
    """RFC 5321: 4xx is worth another try, 5xx is not."""
    return DeliveryFailure(f"{code} {text}".strip(), permanent=500 <= code < 600, connection=connection)


def build_message(message: OutboxMessage, sender: str, now: datetime) -> Message:
    """The MIME message; every header value is stripped of CR/LF, so no user text can add a header.

    Built with the email package's compat32 classes: its header registry (the default policy) spent a millisecond
    a message re-parsing headers grantflow had just made, two thirds of the cost of building and flattening.
    Non-ASCII names and subjects are RFC 2047 encoded, bodies are UTF-8.
    """
    mail = MIMEMultipart("alternative")
    mail["From"] = formataddr((SENDER_NAME, _ascii_address(sender)))
    mail["To"] = formataddr((header_text(message.recipient_name), _ascii_address(message.recipient_address)), "utf-8")
    mail["Subject"] = _encoded(header_text(message.subject))
    mail["Date"] = format_datetime(now)
    mail["Message-ID"] = header_text(message.message_id)
    mail["In-Reply-To"] = header_text(message.thread_id)
    mail["References"] = header_text(message.thread_id)
    mail["Auto-Submitted"] = "auto-generated"
    mail.attach(MIMEText(message.text_body, "plain", "utf-8"))
    mail.attach(MIMEText(message.html_body, "html", "utf-8"))
    return mail


def _encoded(text: str) -> str:
    return text if text.isascii() else Header(text, "utf-8").encode()


def _ascii_address(address: str) -> str:
    """Addresses were made deliverable (IDNA domain) at composition; anything else is refused, not mangled."""
    if not address.isascii() or "@" not in address or any(c in address for c in '<>"\r\n ,'):
        raise ValueError(f"not a deliverable address: {address!r}")
    return address


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

    async def send(self, mail: Message, recipient: str, before_data: Awaitable[object] | None = None) -> None:
        """Hand one message to the server for one recipient, or raise DeliveryFailure.

        `before_data` (the previous message's outcome being recorded) is awaited between the envelope and the
        message: the record overlaps the MAIL and RCPT round trips, yet the server accepts no message before the
        one ahead of it is recorded.
        """
        client = await self._connected()
        content = flatten_message(mail)
        try:
            await self._envelope(client, recipient, len(content))
            if before_data is not None:
                await before_data
            await client.data(content)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:  # the server is closing the connection
                await self.close()
            else:
                await self._reset(client)
            prefix = "RCPT refused: " if isinstance(exc, aiosmtplib.SMTPRecipientRefused) else ""
            raise _by_code(exc.code, prefix + exc.message) from exc
        except CONNECTION_ERRORS as exc:
            await self.close()
            raise DeliveryFailure(f"connection lost: {exc}", permanent=False) from exc

    async def _envelope(self, client: aiosmtplib.SMTP, recipient: str, size: int) -> None:
        options = [f"SIZE={size}"] if client.supports_extension("size") else []  # RFC 1870
        await client.mail(self.server.sender, options=options)
        await client.rcpt(recipient)

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        """Clear the refused envelope so that the next message starts afresh on this connection."""
        with contextlib.suppress(aiosmtplib.SMTPException, *CONNECTION_ERRORS):
            await client.rset()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await hang_up(client)

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
            mechanism = auth_mechanism(client)
            if mechanism is None:
                raise DeliveryFailure("the server offers no usable AUTH mechanism", permanent=True, connection=True)
            await password_login(client, mechanism, server.username, server.password)
