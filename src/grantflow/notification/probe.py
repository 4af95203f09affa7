"""testsmtp: run the real SMTP conversation stage by stage and say exactly where and why it fails.

The probe never raises and never returns a secret: every fact is a string in `details`; on failure
`error_stage`, `error`, `hint` (and `smtp_code` when the server answered one) say what went wrong
(decisions.md §6). It is bounded in time and refuses link-local and cloud-metadata addresses, so that it
cannot be used to scan the network from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import httpx
from cryptography import x509

from grantflow.engine_settings.schemas import SmtpAuthMode, SmtpProtocol
from grantflow.notification.smtp import (
    LOCAL_HOSTNAME,
    SmtpServer,
    TokenRefused,
    auth_mechanism,
    client_for,
    fetch_token,
    hang_up,
    password_login,
    tls_context,
)

METADATA_ADDRESSES = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


@dataclass(frozen=True)
class ProbeTarget(SmtpServer):
    """The server to probe and who receives the test message (nobody when empty: the probe stops after AUTH)."""

    recipient: str = ""


@dataclass(frozen=True)
class ProbePolicy:
    total_seconds: float
    allowed_hosts: frozenset[str]
    ca_file: Path | None


class StageFailed(Exception):
    def __init__(self, stage: str, error: str, hint: str, code: int | None = None) -> None:
        super().__init__(error)
        self.stage, self.error, self.hint, self.code = stage, error, hint, code


async def probe(target: ProbeTarget, policy: ProbePolicy) -> tuple[str, dict[str, str]]:
    """Returns ("OK" | "ERROR", details)."""
    details: dict[str, str] = {"protocol": target.protocol, "tls_verification": "off" if target.insecure else "on"}
    started = time.monotonic()
    try:
        async with asyncio.timeout(policy.total_seconds):
            await _converse(target, policy, details)
    except StageFailed as failure:
        details.update(error_stage=failure.stage, error=failure.error, hint=failure.hint)
        if failure.code is not None:
            details["smtp_code"] = str(failure.code)
    except TimeoutError:
        stage = details.get("_stage", "connect")
        details.update(
            error_stage=stage,
            error=f"no answer within {policy.total_seconds:g} s (during {stage})",
            hint=_timeout_hint(stage, target),
        )
    details.pop("_stage", None)
    details["total_ms"] = str(int((time.monotonic() - started) * 1000))
    return ("ERROR" if "error_stage" in details else "OK"), _scrub(details, target.password)


def _scrub(details: dict[str, str], secret: str) -> dict[str, str]:
    """Servers sometimes echo what they were sent; nothing of the password leaves, whatever happened."""
    if not secret:
        return details
    return {k: v.replace(secret, "***") for k, v in details.items()}


def _timeout_hint(stage: str, target: ProbeTarget) -> str:
    if stage == "banner" and target.protocol != SmtpProtocol.TLS:
        return "the server sent no greeting: the port may expect implicit TLS (usually 465); set protocol TLS"
    if stage == "connect":
        return "nothing answered: check host, port and any firewall between grantflow and the server"
    return f"the server stopped answering during {stage}"


async def _converse(target: ProbeTarget, policy: ProbePolicy, details: dict[str, str]) -> None:
    def stage(name: str) -> None:
        details["_stage"] = name

    stage("config")
    if not target.host:
        raise StageFailed("config", "smtp_server is empty", "set smtp_server to the SMTP host name")
    port = target.effective_port
    details.update(server=target.host, port=str(port))
    stage("resolve")
    addresses = await _resolve(target.host, port, policy, details)
    stage("connect")
    await _tcp_connect(addresses, port, details)
    context = tls_context(target.insecure, policy.ca_file)
    client = client_for(target, context, policy.total_seconds)
    stage("tls" if target.protocol == SmtpProtocol.TLS else "banner")
    try:
        greeting = await client.connect()
    except aiosmtplib.SMTPConnectTimeoutError as exc:
        raise TimeoutError from exc
    except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, ssl.SSLError, OSError) as exc:
        raise _connect_failure(exc, target) from exc
    try:
        await _session(client, target, context, details, stage, greeting)
    finally:
        await hang_up(client)


async def _resolve(host: str, port: int, policy: ProbePolicy, details: dict[str, str]) -> list[str]:
    if policy.allowed_hosts and host.lower() not in policy.allowed_hosts:
        raise StageFailed(
            "config", f"{host} is not in GRANTFLOW_SMTP_ALLOWED_HOSTS", "add it there, or use an allowed host"
        )
    addresses = await _addresses(host, port, "resolve")
    details["resolved"] = ", ".join(addresses)
    _refuse_internal(host, addresses, "resolve")
    return addresses


async def _addresses(host: str, port: int, stage: str) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StageFailed(stage, f"cannot resolve {host}: {exc.strerror}", "check the host name and DNS") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052's well-known prefix: the last 32 bits are an IPv4 address


def _ipv4_inside(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped (::ffff:a.b.c.d), NAT64, 6to4 or Teredo."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    return ip.teredo[1] if ip.teredo is not None else None


def is_internal(address: str) -> bool:
    """Link-local or cloud metadata, also when written as an IPv6 form of an IPv4 address."""
    ip = ipaddress.ip_address(address)
    return any(a is not None and (a.is_link_local or a in METADATA_ADDRESSES) for a in (ip, _ipv4_inside(ip)))


def _refuse_internal(host: str, addresses: list[str], stage: str) -> None:
    """Link-local and cloud-metadata addresses are never contacted, whatever the allow-list says."""
    for address in addresses:
        if is_internal(address):
            raise StageFailed(
                stage,
                f"{host} resolves to {address}, a link-local or cloud metadata address",
                "testsmtp and mail delivery refuse such addresses; use the server's real address",
            )


async def _tcp_connect(addresses: list[str], port: int, details: dict[str, str]) -> None:
    """A bare TCP connect to each address in turn, so that a refused port is told apart from a silent server."""
    started = time.monotonic()
    failure: OSError | None = None
    for address in addresses:
        try:
            _, writer = await asyncio.open_connection(address, port)
        except OSError as exc:
            failure = exc
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        details["connect_ms"] = str(int((time.monotonic() - started) * 1000))
        return
    reason = failure.strerror if failure is not None and failure.strerror else str(failure)
    raise StageFailed(
        "connect",
        f"cannot connect to {', '.join(addresses)} port {port}: {reason}",
        "check the port (25/587 for PLAIN or STARTTLS, 465 for TLS), the host, and firewalls",
    ) from failure


def _connect_failure(exc: Exception, target: ProbeTarget) -> StageFailed:
    cause = exc.__cause__ if isinstance(exc.__cause__, ssl.SSLError) else exc
    if isinstance(cause, ssl.SSLCertVerificationError):
        return _certificate_failure(cause)
    if target.protocol == SmtpProtocol.TLS and (isinstance(cause, ssl.SSLError) or "SSL" in str(exc)):
        return StageFailed(
            "tls",
            f"TLS handshake failed: {cause}",
            "the server does not speak implicit TLS on this port: use STARTTLS (usually 587) or PLAIN (25)",
        )
    return StageFailed("banner", f"no SMTP greeting: {exc}", "check that this port serves SMTP")


def _certificate_failure(error: ssl.SSLCertVerificationError) -> StageFailed:
    reason = error.verify_message or str(error)
    if "mismatch" in reason.lower() or "doesn't match" in reason.lower():
        hint = "the certificate is for another name: use the host name the certificate names"
    else:
        hint = "the certificate is not trusted: install its CA (GRANTFLOW_SMTP_CA_FILE) or fix the chain"
    return StageFailed("tls", f"certificate verification failed: {reason}", hint)


async def _session(
    client: aiosmtplib.SMTP,
    target: ProbeTarget,
    context: ssl.SSLContext,
    details: dict[str, str],
    stage: Callable[[str], None],
    greeting: aiosmtplib.SMTPResponse,
) -> None:
    details["banner"] = f"{greeting.code} {greeting.message}"
    if target.protocol == SmtpProtocol.TLS:
        _record_tls(client, details)
    stage("ehlo")
    await _ehlo(client, details)
    if target.protocol == SmtpProtocol.STARTTLS:
        stage("tls")
        if not client.supports_extension("starttls"):
            raise StageFailed("tls", "the server does not offer STARTTLS", "use PLAIN, or a port that offers STARTTLS")
        try:
            await client.starttls(tls_context=context)
        except ssl.SSLCertVerificationError as exc:
            raise _certificate_failure(exc) from exc
        except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
            if isinstance(exc.__cause__, ssl.SSLCertVerificationError):
                raise _certificate_failure(exc.__cause__) from exc
            raise StageFailed("tls", f"STARTTLS failed: {exc}", "check the server's TLS set-up") from exc
        _record_tls(client, details)
        stage("ehlo")
        await _ehlo(client, details)
    if target.auth_mode != SmtpAuthMode.NONE:
        stage("auth")
        await _authenticate(client, target, details)
    if target.recipient:
        await _send_test_message(client, target, details, stage)


async def _ehlo(client: aiosmtplib.SMTP, details: dict[str, str]) -> None:
    try:
        response = await client.ehlo()
    except aiosmtplib.SMTPResponseException as exc:
        raise StageFailed(
            "ehlo", f"EHLO refused: {exc.code} {exc.message}", "the server refused EHLO", exc.code
        ) from exc
    details["ehlo"] = f"{response.code}"
    details["extensions"] = ", ".join(sorted(client.esmtp_extensions))


def _record_tls(client: aiosmtplib.SMTP, details: dict[str, str]) -> None:
    ssl_object = client.transport.get_extra_info("ssl_object") if client.transport else None
    if ssl_object is None:
        return
    details["tls_version"] = str(ssl_object.version())
    cipher = ssl_object.cipher()
    if cipher:
        details["tls_cipher"] = str(cipher[0])
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        certificate = x509.load_der_x509_certificate(der)
        details["certificate_subject"] = certificate.subject.rfc4514_string()
        details["certificate_issuer"] = certificate.issuer.rfc4514_string()
        details["certificate_expires"] = certificate.not_valid_after_utc.isoformat()


AUTH_HINTS = {
    530: "the server wants STARTTLS (or TLS) before AUTH: set protocol STARTTLS",
    534: "Gmail refuses plain passwords for this account: use an app password or OAUTH2",
    535: "wrong user name or password; with Microsoft 365, also check that SMTP AUTH is enabled for the mailbox",
}


async def _authenticate(client: aiosmtplib.SMTP, target: ProbeTarget, details: dict[str, str]) -> None:
    offered = sorted(m.upper() for m in client.server_auth_methods)
    details["auth_offered"] = ", ".join(offered) or "none"
    if target.auth_mode == SmtpAuthMode.OAUTH2:
        await _xoauth2(client, target, details, offered)
        return
    if not offered:
        hint = "the server offers no AUTH here" + (
            "; many servers offer it only after STARTTLS" if target.protocol == SmtpProtocol.PLAIN else ""
        )
        raise StageFailed("auth", "the server does not offer AUTH", hint)
    mechanism = auth_mechanism(client)
    if mechanism is None:
        raise StageFailed(
            "auth", f"no supported AUTH mechanism offered ({', '.join(offered)})", "enable PLAIN or LOGIN"
        )
    details["auth_used"] = mechanism
    try:
        await password_login(client, mechanism, target.username, target.password)
    except aiosmtplib.SMTPAuthenticationError as exc:
        hint = AUTH_HINTS.get(exc.code, "the server refused the credentials")
        raise StageFailed("auth", f"AUTH refused: {exc.code} {exc.message}", hint, exc.code) from exc
    except aiosmtplib.SMTPException as exc:
        raise StageFailed("auth", f"AUTH failed: {exc}", "check the authentication settings") from exc
    details["auth"] = f"accepted as {target.username}"


async def _xoauth2(client: aiosmtplib.SMTP, target: ProbeTarget, details: dict[str, str], offered: list[str]) -> None:
    token = await _client_credentials_token(target, details)
    if "XOAUTH2" not in offered:
        raise StageFailed("auth", "the server does not offer XOAUTH2", "use PASSWORD, or a server that offers XOAUTH2")
    details["auth_used"] = "XOAUTH2"
    try:
        await client.auth_xoauth2(target.sender, token)
    except aiosmtplib.SMTPAuthenticationError as exc:
        hint = "the server refused the token: check the app's SMTP permission (SMTP.SendAsApp) and the mailbox"
        raise StageFailed("auth", f"AUTH refused: {exc.code} {exc.message}", hint, exc.code) from exc
    details["auth"] = f"accepted as {target.sender}"


async def _client_credentials_token(target: ProbeTarget, details: dict[str, str]) -> str:
    endpoint = target.effective_token_endpoint
    if not endpoint:
        raise StageFailed("config", "smtp_provider_token_endpoint is empty", "set the provider's OAuth2 token URL")
    url = httpx.URL(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    _refuse_internal(url.host, await _addresses(url.host, port, "token"), "token")
    details["token_endpoint"] = endpoint
    try:
        token = await fetch_token(target)
    except httpx.HTTPError as exc:
        raise StageFailed("token", f"token endpoint unreachable: {exc}", "check smtp_provider_token_endpoint") from exc
    except TokenRefused as exc:
        raise StageFailed(
            "token",
            str(exc),
            "check the client id (smtp_server_username), secret (password), scope and tenant in the URL",
        ) from exc
    details["token"] = f"issued, expires in {token.expires_in} s"
    return token.value


async def _send_test_message(
    client: aiosmtplib.SMTP, target: ProbeTarget, details: dict[str, str], stage: Callable[[str], None]
) -> None:
    message = EmailMessage()
    message["From"] = target.sender
    message["To"] = target.recipient
    message["Subject"] = "grantflow test message"
    message["Message-ID"] = make_msgid(domain=LOCAL_HOSTNAME)
    message.set_content("This message tests grantflow's e-mail settings. No action is needed.")
    stage("mail")
    details["mail"] = await _answer("mail", client.mail(target.sender))
    stage("rcpt")
    details["rcpt"] = await _answer("rcpt", client.rcpt(target.recipient))
    stage("data")
    details["data"] = await _answer("data", client.data(message.as_bytes()))
    details["message_id"] = str(message["Message-ID"])


async def _answer(stage: str, command: Awaitable[aiosmtplib.SMTPResponse]) -> str:
    try:
        response = await command
    except aiosmtplib.SMTPResponseException as exc:
        raise StageFailed(
            stage, f"{stage.upper()} refused: {exc.code} {exc.message}", _send_hint(stage, exc.code), exc.code
        ) from exc
    return f"{response.code} {response.message}"


def _send_hint(stage: str, code: int) -> str:
    if stage == "rcpt" and code in (550, 551, 553, 554):
        return "the server refuses to relay to this recipient: authenticate, or allow grantflow's address to relay"
    if stage == "mail":
        return "the server refuses the sender address: use smtp_sender_address the account may send as"
    return "the server refused the message"
