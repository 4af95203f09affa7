"""Notifications end to end: a state change writes the outbox, the delivery worker sends it to a real SMTP server
(aiosmtpd on loopback), and retries, failures, suppression and skips are kept where an admin can see them."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.kit.clock import FrozenClock
from grantflow.notification.delivery import DeliveryWorker
from grantflow.role import service as role_service
from grantflow.runtime import Runtime
from grantflow.user.models import User
from tests.factories import WE, World, bearer, make_user, map_member, workflow_body
from tests.notification.outbox_helpers import BACKEND, SETTINGS, outbox_rows, use_smtp
from tests.notification.smtp_servers import PASSWORD, TOKENS_ISSUED, Mailbox, OAuthMailbox, check_password
from tests.notification.smtp_servers import server_context as tls_server_context
from tests.processes import free_port

OUTBOX = "/grantflow/api/v1/outbox"


@pytest.fixture
def worker(runtime: Runtime, pki: dict[str, Path]) -> DeliveryWorker:
    """A delivery worker over the test app's database that trusts the test CA; tests call deliver_due themselves."""
    config = runtime.config.model_copy(update={"smtp_ca_file": pki["ca"]})
    return DeliveryWorker(replace(runtime, config=config))


async def use_password_auth(world: World, port: int, protocol: str, password: str) -> None:
    await use_smtp(
        world,
        port,
        smtp_server_protocol=protocol,
        smtp_authentication_mode="PASSWORD",
        smtp_server_username="mailer",
        smtp_server_password=password,
    )


async def two_step_workflow(world: World, **overrides: Any) -> None:
    r = world.roles
    body = workflow_body(r["linux-admins"], ("ANY", [r["team-leads"]]), ("ANY", [r["security"]]), **overrides)
    await world.create_workflow(body)


def sent_to(mailbox: Mailbox) -> list[str]:
    return sorted(address for envelope in mailbox.messages for address in envelope.rcpt_tos)


async def test_each_person_hears_of_each_step_once_in_one_thread(
    world: World, worker: DeliveryWorker, start_server: Any
) -> None:
    mailbox = Mailbox()
    await use_smtp(world, start_server(mailbox))
    await two_step_workflow(world)
    request_id = (await world.request_role("alice", "linux-admins", request_justification="incident 42")).json()["id"]

    await worker.deliver_due()
    assert sent_to(mailbox) == ["alice@example.com", "bob@example.com", "frank@example.com"]
    assert (await world.decide("bob", request_id, 0)).status_code == 200
    await worker.deliver_due()
    assert (await world.decide("carol", request_id, 1)).status_code == 200
    await worker.deliver_due()
    assert (await worker.deliver_due()).claimed == 0  # nothing is sent twice

    events = Counter((m.recipient_address, m.event) for m in await outbox_rows(worker.runtime))
    assert events == Counter(
        {
            ("alice@example.com", "FILED"): 1,
            ("bob@example.com", "APPROVAL_NEEDED"): 1,
            ("frank@example.com", "APPROVAL_NEEDED"): 2,  # frank approves for both steps' roles
            ("frank@example.com", "STEP_CLOSED"): 2,  # and hears that bob, then carol, did it first
            ("carol@example.com", "APPROVAL_NEEDED"): 1,
            ("alice@example.com", "APPROVED"): 1,  # requester and target are one person: one mail
        }
    )
    messages = mailbox.parsed()
    assert len(messages) == 8
    thread = f"<request-{request_id}@example.com>"
    assert {(m["In-Reply-To"], m["References"]) for m in messages} == {(thread, thread)}
    assert len({m["Message-ID"] for m in messages}) == 8
    assert {m["Subject"] for m in messages} == {f"[grantflow] linux-admins for Alice (request {request_id[:8]})"}
    assert {str(m["From"]) for m in messages} == {"grantflow <grantflow@example.com>"}
    approved = next(m for m in messages if "granted" in str(m.get_body(("plain",)).get_content()))
    text = approved.get_body(("plain",)).get_content()
    html = approved.get_body(("html",)).get_content()
    assert "You were granted linux-admins" in text
    assert "incident 42" in text
    assert f"{BACKEND}/requests/{request_id}" in text
    assert f'href="{BACKEND}/requests/{request_id}"' in html
    assert str(approved["To"]) == "Alice <alice@example.com>"


async def test_denial_cancellation_and_revocation_reach_the_people_concerned(
    world: World, worker: DeliveryWorker, start_server: Any
) -> None:
    await use_smtp(world, start_server(Mailbox()))
    r = world.roles
    await world.create_workflow(
        workflow_body(r["db-owners"], ("ANY", [r["team-leads"]]), can_bypass_revoke_workflow=True)
    )
    on_behalf = (await world.request_role("erin", "db-owners", target_user={"id": str(world.users["dave"].id)})).json()
    assert (await world.decide("bob", on_behalf["id"], 0, "DENIED")).status_code == 200
    withdrawn = (await world.request_role("alice", "db-owners")).json()["id"]
    await world.client.delete(f"{WE}/requests/{withdrawn}", headers=await world.as_("alice"))
    granted = (await world.request_role("carol", "db-owners")).json()["id"]
    assert (await world.decide("frank", granted, 0)).status_code == 200
    revoked = await world.client.post(f"{WE}/requests/{granted}/role/revoke", headers=await world.as_("frank"))
    assert revoked.status_code == 200, revoked.text

    rows = await outbox_rows(worker.runtime)
    about = {
        rid: sorted((m.recipient_name, m.event) for m in rows if str(m.request_id) == rid)
        for rid in (on_behalf["id"], withdrawn, granted)
    }
    assert [e for e in about[on_behalf["id"]] if e[1] == "DENIED"] == [("Dave", "DENIED"), ("Erin", "DENIED")]
    assert [e for e in about[withdrawn] if e[1] == "CANCELLED"] == [("Bob", "CANCELLED"), ("Frank", "CANCELLED")]
    assert [e for e in about[granted] if e[1] == "REVOKED"] == [("Carol", "REVOKED")]
    assert ("Bob", "STEP_CLOSED") in about[granted]  # frank decided the step bob was also asked for


async def test_with_email_disabled_mails_are_recorded_as_suppressed(
    world: World, worker: DeliveryWorker, start_server: Any
) -> None:
    mailbox = Mailbox()
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    assert {m.status for m in await outbox_rows(worker.runtime)} == {"SUPPRESSED"}
    assert (await worker.deliver_due()).claimed == 0

    # Enabled when the event happened, disabled before delivery: kept, not sent.
    await use_smtp(world, start_server(mailbox))
    await world.request_role("dave", "linux-admins")
    await world.client.put(SETTINGS, json={"smtp_server_enabled": False}, headers=await world.as_("admin"))
    report = await worker.deliver_due()
    assert (report.claimed, report.suppressed, mailbox.messages) == (3, 3, [])
    suppressed = [m for m in await outbox_rows(worker.runtime) if m.status == "SUPPRESSED"]
    assert len(suppressed) == 6
    assert all("disabled" in m.last_error for m in suppressed)


async def test_people_without_a_usable_address_are_skipped_and_recorded(
    world: World, worker: DeliveryWorker, start_server: Any, session: AsyncSession
) -> None:
    mailbox = Mailbox()
    await use_smtp(world, start_server(mailbox))
    await session.execute(update(User).where(User.username == "bob").values(email=""))
    await session.execute(update(User).where(User.username == "frank").values(email="frank@bücher.example"))
    await session.execute(update(User).where(User.username == "alice").values(email="alice@home@example.com"))
    await session.commit()
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    await worker.deliver_due()

    assert sent_to(mailbox) == ["frank@xn--bcher-kva.example"]
    skipped = {m.recipient_name: (m.status, m.last_error) for m in await outbox_rows(worker.runtime)}
    assert skipped["Bob"] == ("SKIPPED", "the user has no e-mail address")
    assert skipped["Alice"][0] == "SKIPPED"
    assert skipped["Alice"][1].startswith("the user's e-mail address cannot be mailed: the name before the @")


async def test_request_role_max_approvers_caps_the_approvers_asked(
    world: World, worker: DeliveryWorker, start_server: Any
) -> None:
    mailbox = Mailbox()
    await use_smtp(world, start_server(mailbox), request_role_max_approvers=1)
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    await worker.deliver_due()
    assert sent_to(mailbox) == ["alice@example.com", "bob@example.com"]  # the first approver by user name


async def test_names_and_texts_cannot_add_headers_or_recipients(
    world: World, worker: DeliveryWorker, start_server: Any, session: AsyncSession, runtime: Runtime
) -> None:
    mailbox = Mailbox()
    await use_smtp(world, start_server(mailbox))
    mallory = await make_user(
        session, runtime, "mallory", display_name="Mallory\r\nBcc: evil@attacker.example\r\nX-Injected: yes"
    )
    await map_member(session, world.roles["team-leads"], mallory)
    role = await role_service.create_role(session, "ops\r\nCc: evil2@attacker.example")
    await session.commit()
    world.roles["sneaky"] = role
    await world.create_workflow(workflow_body(role, ("ANY", [world.roles["team-leads"]])))
    response = await world.request_role(
        "alice", "sneaky", request_justification="<script>alert(1)</script>\r\nBcc: evil3@attacker.example"
    )
    assert response.status_code == 201, response.text
    await worker.deliver_due()

    assert sent_to(mailbox) == ["alice@example.com", "bob@example.com", "frank@example.com", "mallory@example.com"]
    for message in mailbox.parsed():
        assert [message[h] for h in ("Bcc", "Cc", "X-Injected")] == [None, None, None]
        assert len(message.get_all("To")) == 1
        html = message.get_body(("html",)).get_content()
        assert "<script>" not in html
        assert "&lt;script&gt;" in html
    to_mallory = next(m for m in mailbox.parsed() if "mallory@" in str(m["To"]))
    # The would-be headers stay inside the quoted display name, on one line.
    assert str(to_mallory["To"]) == '"Mallory Bcc: evil@attacker.example X-Injected: yes" <mallory@example.com>'


async def test_a_server_that_answers_421_is_tried_again_after_the_backoff(
    world: World, worker: DeliveryWorker, start_server: Any, clock: FrozenClock
) -> None:
    mailbox = Mailbox(busy_mails=1)
    await use_smtp(world, start_server(mailbox))
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")

    first = await worker.deliver_due()
    assert (first.sent, first.retried) == (2, 1)  # the connection is reopened after the 421
    waiting = next(m for m in await outbox_rows(worker.runtime) if m.status == "PENDING")
    assert waiting.last_error.startswith("421")
    assert waiting.next_attempt_at == clock.now() + timedelta(seconds=60)
    assert (await worker.deliver_due()).claimed == 0  # not before its time
    clock.advance(timedelta(seconds=60))
    assert (await worker.deliver_due()).sent == 1
    assert len(mailbox.messages) == 3
    assert {(m.status, m.last_error) for m in await outbox_rows(worker.runtime)} == {("SENT", "")}


async def test_an_unreachable_server_is_retried_with_backoff_then_failed_and_an_admin_can_retry(
    world: World, worker: DeliveryWorker, start_server: Any, clock: FrozenClock, client: httpx.AsyncClient
) -> None:
    port = free_port()  # nothing listens here yet
    await use_smtp(world, port, smtp_retry_attempts=2)
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")

    delays = []
    for _ in range(3):
        report = await worker.deliver_due()
        rows = await outbox_rows(worker.runtime)
        delays.append(int((rows[0].next_attempt_at - clock.now()).total_seconds()))
        clock.advance(timedelta(seconds=delays[-1]))
    assert report.failed == 3
    assert delays[:2] == [60, 120]
    rows = await outbox_rows(worker.runtime)
    assert {(m.status, m.attempts) for m in rows} == {("FAILED", 3)}
    assert all("cannot open the SMTP session" in m.last_error for m in rows)

    admin = await world.as_("admin")
    failed = (await client.get(OUTBOX, params={"status": "FAILED"}, headers=admin)).json()
    assert failed["count"] == 3
    mailbox = Mailbox()
    start_server(mailbox, port=port)
    retried = await client.post(f"{OUTBOX}/{failed['items'][0]['id']}/retry", headers=admin)
    assert (retried.status_code, retried.json()["status"], retried.json()["attempts"]) == (200, "PENDING", 0)
    assert (await worker.deliver_due()).sent == 1
    assert len(mailbox.messages) == 1


async def test_a_refused_recipient_fails_at_once(world: World, worker: DeliveryWorker, start_server: Any) -> None:
    await use_smtp(world, start_server(Mailbox(refuse_rcpt=True)))
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    report = await worker.deliver_due()
    assert (report.failed, report.retried) == (3, 0)
    assert {(m.status, m.attempts) for m in await outbox_rows(worker.runtime)} == {("FAILED", 1)}
    assert all(m.last_error.startswith("550 RCPT refused") for m in await outbox_rows(worker.runtime))


async def test_one_refused_recipient_does_not_stop_the_rest_of_the_batch(
    world: World, worker: DeliveryWorker, start_server: Any
) -> None:
    mailbox = Mailbox(refused=frozenset({"alice@example.com"}))
    await use_smtp(world, start_server(mailbox))
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    report = await worker.deliver_due()
    assert (report.sent, report.failed) == (2, 1)
    assert mailbox.ehlos == 1  # the refused envelope was reset, the connection kept
    assert sorted(r for m in mailbox.messages for r in m.rcpt_tos) == ["bob@example.com", "frank@example.com"]
    refused = [m for m in await outbox_rows(worker.runtime) if m.status == "FAILED"]
    assert [m.recipient_address for m in refused] == ["alice@example.com"]


async def test_starttls_with_password_auth_uses_one_connection_per_batch(
    world: World, worker: DeliveryWorker, start_server: Any, pki: dict[str, Path]
) -> None:
    mailbox = Mailbox()
    port = start_server(
        mailbox,
        tls_context=tls_server_context(pki["cert"], pki["key"]),
        require_starttls=True,
        authenticator=check_password,
    )
    await use_password_auth(world, port, "STARTTLS", PASSWORD)
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    assert (await worker.deliver_due()).sent == 3
    assert mailbox.ehlos == 2  # one connection: EHLO, STARTTLS, EHLO again


async def test_a_refused_password_fails_the_batch_and_never_shows_the_password(
    world: World, worker: DeliveryWorker, start_server: Any, pki: dict[str, Path]
) -> None:
    port = start_server(
        Mailbox(), tls_context=tls_server_context(pki["cert"], pki["key"]), authenticator=check_password
    )
    await use_password_auth(world, port, "STARTTLS", "wrong-" + PASSWORD)
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    assert (await worker.deliver_due()).failed == 3
    admin = await world.as_("admin")
    listing = await world.client.get(OUTBOX, headers=admin)
    assert {i["status"] for i in listing.json()["items"]} == {"FAILED"}
    assert all(i["last_error"].startswith("535") for i in listing.json()["items"])
    assert PASSWORD not in listing.text


async def test_xoauth2_token_is_fetched_once_and_reused(
    world: World, worker: DeliveryWorker, start_server: Any, pki: dict[str, Path], token_endpoint: str
) -> None:
    mailbox = OAuthMailbox()
    port = start_server(mailbox, tls_context=tls_server_context(pki["cert"], pki["key"]), auth_require_tls=True)
    await use_smtp(
        world,
        port,
        smtp_server_protocol="STARTTLS",
        smtp_authentication_mode="OAUTH2",
        smtp_provider="MICROSOFT",
        smtp_provider_token_endpoint=token_endpoint,
        smtp_server_username="mailer",
        smtp_server_password=PASSWORD,
    )
    await two_step_workflow(world)
    issued_before = len(TOKENS_ISSUED)
    await world.request_role("alice", "linux-admins")
    assert (await worker.deliver_due()).sent == 3
    await world.request_role("dave", "linux-admins")
    assert (await worker.deliver_due()).sent == 3  # a second connection, the same token
    assert len(TOKENS_ISSUED) - issued_before == 1
    assert len(mailbox.messages) == 6


async def test_the_outbox_api_is_for_admins_and_validates_its_input(
    world: World, worker: DeliveryWorker, start_server: Any, client: httpx.AsyncClient
) -> None:
    await use_smtp(world, start_server(Mailbox()))
    await two_step_workflow(world)
    request_id = (await world.request_role("alice", "linux-admins")).json()["id"]
    await worker.deliver_due()
    admin = await world.as_("admin")

    listing = await client.get(OUTBOX, params={"request_id": request_id, "sortkey": "status"}, headers=admin)
    assert listing.status_code == 200
    assert listing.json()["count"] == 3
    one = listing.json()["items"][0]
    detail = (await client.get(f"{OUTBOX}/{one['id']}", headers=admin)).json()
    assert request_id in detail["text_body"]
    assert "<html" in detail["html_body"]
    again = await client.post(f"{OUTBOX}/{one['id']}/retry", headers=admin)
    assert (again.status_code, again.json()["property"]) == (400, "status")
    unknown = await client.get(f"{OUTBOX}/00000000-0000-4000-8000-000000000000", headers=admin)
    assert (unknown.status_code, unknown.json()["property"]) == (404, "message_id")
    bad = await client.get(OUTBOX, params={"status": "LOST"}, headers=admin)
    assert (bad.status_code, bad.json()["property"]) == (400, "status")
    for who in ("alice", "heidi", "grace"):  # a requester, a workflow manager, an auditor
        assert (await client.get(OUTBOX, headers=await world.as_(who))).status_code == 403
    assert (await client.get(OUTBOX)).status_code == 401


async def test_metrics_count_deliveries_for_an_admin_or_the_metrics_token(
    world: World, worker: DeliveryWorker, start_server: Any, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await use_smtp(world, start_server(Mailbox(refuse_rcpt=False)))
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    await worker.deliver_due()
    await world.request_role("dave", "linux-admins")

    scrape = await client.get("/metrics", headers=await world.as_("admin"))
    assert scrape.status_code == 200
    lines = set(scrape.text.splitlines())
    assert "grantflow_mail_sent_total 3.0" in lines
    assert "grantflow_mail_queue_depth 3.0" in lines
    assert 'grantflow_outbox_messages{status="SENT"} 3.0' in lines
    assert "grantflow_mail_delivery_latency_seconds_count 3.0" in lines

    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=await world.as_("alice"))).status_code == 403
    runtime.config = runtime.config.model_copy(update={"metrics_token": SecretStr("scrape-secret")})
    assert (await client.get("/metrics", headers=bearer("scrape-secret"))).status_code == 200
    assert (await client.get("/metrics", headers=bearer("scrape-wrong"))).status_code == 401


async def test_delivery_keeps_to_the_allowed_smtp_hosts(
    world: World, worker: DeliveryWorker, start_server: Any
) -> None:
    mailbox = Mailbox()
    await use_smtp(world, start_server(mailbox))
    fenced = replace(
        worker,
        runtime=replace(
            worker.runtime, config=worker.runtime.config.model_copy(update={"smtp_allowed_hosts": "relay.corp.example"})
        ),
    )
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    assert (await fenced.deliver_due()).failed == 3
    assert mailbox.messages == []
    assert all("GRANTFLOW_SMTP_ALLOWED_HOSTS" in m.last_error for m in await outbox_rows(worker.runtime))


async def test_implicit_tls_with_auth_login_when_plain_is_not_offered(
    world: World, worker: DeliveryWorker, start_server: Any, pki: dict[str, Path]
) -> None:
    mechanisms: list[str] = []

    def recording(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        mechanisms.append(mechanism)
        return check_password(server, session, envelope, mechanism, auth_data)

    mailbox = Mailbox()
    port = start_server(
        mailbox,
        ssl_context=tls_server_context(pki["cert"], pki["key"]),
        authenticator=recording,
        auth_exclude_mechanism=["PLAIN"],
        auth_require_tls=False,  # aiosmtpd counts only STARTTLS as TLS; this connection is implicit TLS throughout
    )
    await use_password_auth(world, port, "TLS", PASSWORD)
    await two_step_workflow(world)
    await world.request_role("alice", "linux-admins")
    assert (await worker.deliver_due()).sent == 3
    assert mechanisms == ["LOGIN"]  # once, for the batch's one connection
    assert len(mailbox.messages) == 3
