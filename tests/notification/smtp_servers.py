"""SMTP servers for the tests: aiosmtpd on loopback with TLS from a test CA, AUTH, failures on purpose, and an
OAuth2 token endpoint. Real servers, real sockets: nothing here mocks the client side."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, Session

from grantflow.tls import init_tls
from tests.processes import free_port

PASSWORD = "smtp-pass-do-not-leak"


# Every token the test token endpoint issued, so a test can count how often the sender asked for one.
TOKENS_ISSUED: list[str] = []


class Mailbox:
    """Accepts everything (or refuses every recipient); keeps the envelopes and counts EHLOs (one per connection,
    plus one after STARTTLS)."""

    def __init__(self, refuse_rcpt: bool = False, busy_mails: int = 0, refused: frozenset[str] = frozenset()) -> None:
        self.messages: list[Envelope] = []
        self.refuse_rcpt = refuse_rcpt
        self.refused = refused  # recipients refused even when the rest are accepted
        self.busy_mails = busy_mails  # answer 421 to this many MAIL FROM commands first
        self.ehlos = 0

    async def handle_EHLO(
        self, server: Any, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        self.ehlos += 1
        return responses

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.busy_mails > 0:
            self.busy_mails -= 1
            return "421 4.7.0 Too busy, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    def parsed(self) -> list[EmailMessage]:
        return [
            message_from_bytes(bytes(e.original_content or b""), policy=default)  # type: ignore[misc]
            for e in self.messages
        ]

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt or address in self.refused:
            return "550 5.7.1 Relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 2.0.0 Ok: queued as GF123"


def check_password(server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any) -> AuthResult:
    ok = auth_data.login == b"mailer" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA with a certificate for localhost, and a second trusted CA whose certificate names another host."""
    base = tmp_path_factory.mktemp("pki")
    good = init_tls(base / "good", ["localhost"], datetime.now(UTC))
    wrong = init_tls(base / "wrong", ["mail.elsewhere.example"], datetime.now(UTC))
    bundle = base / "trusted.pem"
    bundle.write_text(good.ca_cert.read_text() + wrong.ca_cert.read_text())
    return {
        "ca": bundle,
        "cert": good.server_cert,
        "key": good.server_key,
        "wrong_cert": wrong.server_cert,
        "wrong_key": wrong.server_key,
    }


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


@pytest.fixture
def start_server() -> Iterator[Any]:
    controllers: list[Controller] = []

    def start(handler: Mailbox, port: int | None = None, **options: Any) -> int:
        port = port or free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        controllers.append(controller)
        return port

    yield start
    for controller in controllers:
        controller.stop()


class OAuthMailbox(Mailbox):
    """Accepts XOAUTH2 with the one token the test token endpoint issues."""

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        decoded = base64.b64decode(args[1]).decode()
        ok = decoded == "user=grantflow@example.com\x01auth=Bearer token-for-mailer\x01\x01"
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def token_endpoint() -> Iterator[str]:
    """A client-credentials token endpoint that knows one client: mailer / PASSWORD."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.conftest import _serve_in_thread

    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        if (form.get("client_id"), form.get("client_secret")) != ("mailer", PASSWORD):
            return JSONResponse({"error": "invalid_client", "error_description": "AADSTS7000215: bad secret"}, 401)
        assert form.get("scope") == "https://outlook.office365.com/.default"
        TOKENS_ISSUED.append("token-for-mailer")
        return JSONResponse({"access_token": "token-for-mailer", "token_type": "Bearer", "expires_in": 3599})

    with _serve_in_thread(Starlette(routes=[Route("/token", token, methods=["POST"])])) as port:
        yield f"http://127.0.0.1:{port}/token"
