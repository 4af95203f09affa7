"""testsmtp's probe against real SMTP servers (aiosmtpd on loopback): each failure names its stage and a hint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from grantflow.engine_settings.schemas import SmtpAuthMode, SmtpProtocol, SmtpProvider
from grantflow.notification.probe import ProbePolicy, ProbeTarget, probe
from tests.notification.smtp_servers import PASSWORD, Mailbox, OAuthMailbox, check_password, server_context
from tests.processes import free_port


def _target(port: int, **changes: Any) -> ProbeTarget:
    base = ProbeTarget(
        host="localhost",
        port=port,
        protocol=SmtpProtocol.PLAIN,
        auth_mode=SmtpAuthMode.NONE,
        username="mailer",
        password=PASSWORD,
        insecure=False,
        sender="grantflow@example.com",
        recipient="admin@example.com",
    )
    return replace(base, **changes)


def _policy(pki: dict[str, Path], seconds: float = 10.0) -> ProbePolicy:
    return ProbePolicy(total_seconds=seconds, allowed_hosts=frozenset(), ca_file=pki["ca"])


async def test_plain_relay_delivers_the_test_message(start_server: Any, pki: dict[str, Path]) -> None:
    mailbox = Mailbox()
    port = start_server(mailbox)
    status, details = await probe(_target(port), _policy(pki))
    assert status == "OK", details
    assert details["banner"].startswith("220")
    assert details["data"] == "250 2.0.0 Ok: queued as GF123"
    assert mailbox.messages[0].rcpt_tos == ["admin@example.com"]
    assert b"Subject: grantflow test message" in mailbox.messages[0].original_content


async def test_starttls_with_password_auth(start_server: Any, pki: dict[str, Path]) -> None:
    context = server_context(pki["cert"], pki["key"])
    port = start_server(Mailbox(), tls_context=context, require_starttls=True, authenticator=check_password)
    target = _target(port, protocol=SmtpProtocol.STARTTLS, auth_mode=SmtpAuthMode.PASSWORD)
    status, details = await probe(target, _policy(pki))
    assert status == "OK", details
    assert details["tls_version"].startswith("TLSv1.")
    assert details["certificate_subject"] == "CN=localhost"
    assert "PLAIN" in details["auth_offered"]
    assert details["auth"] == "accepted as mailer"
    assert PASSWORD not in str(details)


async def test_implicit_tls(start_server: Any, pki: dict[str, Path]) -> None:
    port = start_server(Mailbox(), ssl_context=server_context(pki["cert"], pki["key"]))
    status, details = await probe(_target(port, protocol=SmtpProtocol.TLS), _policy(pki))
    assert status == "OK", details
    assert details["certificate_issuer"] == "CN=grantflow local CA"


async def test_wrong_password_is_an_auth_failure_with_its_code(start_server: Any, pki: dict[str, Path]) -> None:
    port = start_server(Mailbox(), tls_context=server_context(pki["cert"], pki["key"]), authenticator=check_password)
    target = _target(
        port, protocol=SmtpProtocol.STARTTLS, auth_mode=SmtpAuthMode.PASSWORD, password="wrong-" + PASSWORD
    )
    status, details = await probe(target, _policy(pki))
    assert (status, details["error_stage"], details["smtp_code"]) == ("ERROR", "auth", "535")
    assert "Microsoft 365" in details["hint"]
    assert PASSWORD not in str(details)


async def test_relay_denied_at_rcpt(start_server: Any, pki: dict[str, Path]) -> None:
    port = start_server(Mailbox(refuse_rcpt=True))
    status, details = await probe(_target(port), _policy(pki))
    assert (status, details["error_stage"], details["smtp_code"]) == ("ERROR", "rcpt", "550")
    assert "relay" in details["hint"]


async def test_connection_refused(pki: dict[str, Path]) -> None:
    status, details = await probe(_target(free_port()), _policy(pki))
    assert (status, details["error_stage"]) == ("ERROR", "connect")


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_server_that_never_greets(silent_server: int, pki: dict[str, Path]) -> None:
    status, details = await probe(_target(silent_server), _policy(pki, seconds=1.5))
    assert (status, details["error_stage"]) == ("ERROR", "banner")
    assert "implicit TLS" in details["hint"]


async def test_starttls_against_an_implicit_tls_port(start_server: Any, pki: dict[str, Path]) -> None:
    port = start_server(Mailbox(), ssl_context=server_context(pki["cert"], pki["key"]))
    status, details = await probe(_target(port, protocol=SmtpProtocol.STARTTLS), _policy(pki, seconds=1.5))
    assert (status, details["error_stage"]) == ("ERROR", "banner")
    assert "465" in details["hint"]


async def test_implicit_tls_against_a_plain_port(start_server: Any, pki: dict[str, Path]) -> None:
    port = start_server(Mailbox(), tls_context=server_context(pki["cert"], pki["key"]))
    status, details = await probe(_target(port, protocol=SmtpProtocol.TLS), _policy(pki))
    assert (status, details["error_stage"]) == ("ERROR", "tls")
    assert "STARTTLS" in details["hint"]


async def test_certificate_for_another_host(start_server: Any, pki: dict[str, Path]) -> None:
    port = start_server(Mailbox(), tls_context=server_context(pki["wrong_cert"], pki["wrong_key"]))
    status, details = await probe(_target(port, protocol=SmtpProtocol.STARTTLS), _policy(pki))
    assert (status, details["error_stage"]) == ("ERROR", "tls")
    assert "another name" in details["hint"]
    # With verification off the same server passes, and the answer says verification was off.
    status, details = await probe(_target(port, protocol=SmtpProtocol.STARTTLS, insecure=True), _policy(pki))
    assert status == "OK", details
    assert details["tls_verification"] == "off"


async def test_metadata_and_disallowed_hosts_are_refused(pki: dict[str, Path]) -> None:
    status, details = await probe(_target(25, host="169.254.169.254"), _policy(pki))
    assert (status, details["error_stage"]) == ("ERROR", "resolve")
    allow_list = ProbePolicy(total_seconds=5, allowed_hosts=frozenset({"mail.example.com"}), ca_file=None)
    status, details = await probe(_target(25), allow_list)
    assert (status, details["error_stage"]) == ("ERROR", "config")


def _oauth_target(port: int, endpoint: str, **changes: Any) -> ProbeTarget:
    return _target(
        port,
        protocol=SmtpProtocol.STARTTLS,
        auth_mode=SmtpAuthMode.OAUTH2,
        provider=SmtpProvider.MICROSOFT,
        token_endpoint=endpoint,
        **changes,
    )


async def test_xoauth2_with_a_client_credentials_token(
    start_server: Any, pki: dict[str, Path], token_endpoint: str
) -> None:
    port = start_server(OAuthMailbox(), tls_context=server_context(pki["cert"], pki["key"]), auth_require_tls=True)
    status, details = await probe(_oauth_target(port, token_endpoint), _policy(pki))
    assert status == "OK", details
    assert (details["auth_used"], details["token"]) == ("XOAUTH2", "issued, expires in 3599 s")
    assert "token-for-mailer" not in str(details)


async def test_xoauth2_token_refused(start_server: Any, pki: dict[str, Path], token_endpoint: str) -> None:
    port = start_server(OAuthMailbox(), tls_context=server_context(pki["cert"], pki["key"]))
    status, details = await probe(_oauth_target(port, token_endpoint, password="wrong-secret"), _policy(pki))
    assert (status, details["error_stage"]) == ("ERROR", "token")
    assert "AADSTS7000215" in details["error"]
    assert "wrong-secret" not in str(details)


async def test_token_endpoint_on_a_metadata_address_is_refused(start_server: Any, pki: dict[str, Path]) -> None:
    port = start_server(OAuthMailbox(), tls_context=server_context(pki["cert"], pki["key"]))
    target = _oauth_target(port, "http://169.254.169.254/latest/meta-data/iam")
    status, details = await probe(target, _policy(pki))
    assert (status, details["error_stage"]) == ("ERROR", "token")
    assert "metadata" in details["error"]


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    ],
)
def test_metadata_addresses_are_recognised_in_every_form(address: str) -> None:
    from grantflow.notification.probe import is_internal

    assert is_internal(address)


@pytest.mark.parametrize("address", ["127.0.0.1", "::ffff:127.0.0.1", "10.0.0.5", "::1", "2001:db8::25"])
def test_ordinary_relays_stay_reachable(address: str) -> None:
    """Loopback and private addresses are allowed (an on-premises relay lives there), in any spelling."""
    from grantflow.notification.probe import is_internal

    assert not is_internal(address)
