"""GET/PUT /settings and POST /testsmtp: validation, write-only password, scopes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from grantflow.engine_settings.models import EngineSettings
from grantflow.runtime import Runtime
from tests.access_request.test_rules import assert_error
from tests.factories import WE, World

SETTINGS = f"{WE}/settings"

GO_SDK_BODY = {
    "smtp_server_enabled": True,
    "smtp_server": "smtp.example.com",
    "smtp_server_port": 587,
    "smtp_server_protocol": "starttls",
    "smtp_server_username": "mailer",
    "smtp_server_password": "s3cret-smtp-pass",
    "smtp_server_insecure_verify": False,
    "smtp_sender_address": "grantflow@example.com",
    "smtp_retry_attempts": 3,
    "privx_backend_address": "https://grantflow.example.com",
    "request_role_max_approvers": 5,
    "smtp_provider": "generic",
    "smtp_authentication_mode": "password",
    "smtp_provider_token_endpoint": "",
    "smtp_provider_token_scope": "",
}


async def test_put_then_get_round_trips_without_the_password(world: World, runtime: Runtime) -> None:
    admin = await world.as_("heidi")
    assert (await world.client.put(SETTINGS, json=GO_SDK_BODY, headers=admin)).status_code == 200
    stored = (await world.client.get(SETTINGS, headers=admin)).json()
    assert stored["smtp_server_password"] == ""
    assert stored["smtp_server_protocol"] == "STARTTLS"
    assert stored["smtp_authentication_mode"] == "PASSWORD"
    assert {k: v for k, v in stored.items() if k != "smtp_server_password"} == {
        **{k: v for k, v in GO_SDK_BODY.items() if k != "smtp_server_password"},
        "smtp_server_protocol": "STARTTLS",
        "smtp_provider": "GENERIC",
        "smtp_authentication_mode": "PASSWORD",
        "request_expiry_hours": 168,  # extensions, at their defaults
        "reminder_hours": 24,
        "expiry_notice_hours": 24,
    }
    # The password is stored sealed: not in clear anywhere in the row.
    async with runtime.sessionmaker() as session:
        row = await session.scalar(select(EngineSettings))
    assert row is not None
    assert "s3cret-smtp-pass" not in str(row.values) + str(row.smtp_password_sealed)
    assert runtime.secret_box.open(row.smtp_password_sealed or "") == "s3cret-smtp-pass"


async def test_empty_password_keeps_the_stored_one_and_partial_put_keeps_the_rest(
    world: World, runtime: Runtime
) -> None:
    admin = await world.as_("heidi")
    await world.client.put(SETTINGS, json=GO_SDK_BODY, headers=admin)
    echoed = (await world.client.get(SETTINGS, headers=admin)).json()
    echoed["smtp_server_port"] = 2525
    assert (await world.client.put(SETTINGS, json=echoed, headers=admin)).status_code == 200
    assert (await world.client.put(SETTINGS, json={"smtp_retry_attempts": 9}, headers=admin)).status_code == 200
    stored = (await world.client.get(SETTINGS, headers=admin)).json()
    assert (stored["smtp_server_port"], stored["smtp_retry_attempts"], stored["smtp_server"]) == (
        2525,
        9,
        "smtp.example.com",
    )
    async with runtime.sessionmaker() as session:
        row = await session.scalar(select(EngineSettings))
    assert row is not None
    assert runtime.secret_box.open(row.smtp_password_sealed or "") == "s3cret-smtp-pass"


@pytest.mark.parametrize(
    ("change", "code", "prop"),
    [
        ({"smtp_server_port": 70000}, "VALUE_OUT_OF_BOUNDS", "smtp_server_port"),
        ({"request_expiry_hours": 0}, "VALUE_OUT_OF_BOUNDS", "request_expiry_hours"),
        ({"smtp_server_port": "587"}, "VALUE_INCORRECT_TYPE", "smtp_server_port"),
        ({"smtp_server_protocol": "SSL3"}, "VALUE_INCORRECT_FORMAT", "smtp_server_protocol"),
        (
            {"smtp_sender_address": "grantflow@example.com\r\nBcc: victim@example.com"},
            "INVALID_REQUEST_DATA",
            "smtp_sender_address",
        ),
        ({"smtp_sender_address": "not-an-address"}, "INVALID_REQUEST_DATA", "smtp_sender_address"),
        ({"smtp_server": "mail.example.com\r\nRCPT TO:<x@y>"}, "INVALID_REQUEST_DATA", "smtp_server"),
        ({"privx_backend_address": "javascript:alert(1)"}, "INVALID_REQUEST_DATA", "privx_backend_address"),
        ({"smtp_server_enabled": "yes"}, "VALUE_INCORRECT_TYPE", "smtp_server_enabled"),
    ],
)
async def test_bad_settings_are_refused_and_nothing_is_stored(
    world: World, change: dict[str, object], code: str, prop: str
) -> None:
    admin = await world.as_("heidi")
    await world.client.put(SETTINGS, json=GO_SDK_BODY, headers=admin)
    before = (await world.client.get(SETTINGS, headers=admin)).json()
    assert_error(await world.client.put(SETTINGS, json={**GO_SDK_BODY, **change}, headers=admin), 400, code, prop)
    assert (await world.client.get(SETTINGS, headers=admin)).json() == before


async def test_password_authentication_needs_a_password(world: World) -> None:
    body = {**GO_SDK_BODY, "smtp_server_password": ""}
    response = await world.client.put(SETTINGS, json=body, headers=await world.as_("heidi"))
    assert_error(response, 400, "REQUIRED_VALUE_MISSING", "smtp_server_password")


async def test_settings_scopes(world: World) -> None:
    assert (await world.client.get(SETTINGS, headers=await world.as_("ivan"))).status_code == 200
    assert_error(await world.client.get(SETTINGS, headers=await world.as_("alice")), 403, "PERMISSION_DENIED")
    assert_error(await world.client.put(SETTINGS, json={}, headers=await world.as_("ivan")), 403, "PERMISSION_DENIED")
    assert_error(
        await world.client.post(f"{WE}/testsmtp", json={}, headers=await world.as_("ivan")), 403, "PERMISSION_DENIED"
    )


async def test_testsmtp_over_the_api_uses_the_stored_password_and_the_callers_address(world: World) -> None:
    from aiosmtpd.controller import Controller

    from tests.notification.smtp_servers import Mailbox, check_password
    from tests.processes import free_port

    mailbox, port = Mailbox(), free_port()
    # AUTH over a plain connection only on loopback in this test; real servers want TLS first.
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=check_password, auth_require_tls=False
    )
    controller.start()
    try:
        admin = await world.as_("heidi")
        stored = {
            **GO_SDK_BODY,
            "smtp_server": "127.0.0.1",
            "smtp_server_port": port,
            "smtp_server_protocol": "PLAIN",
            "smtp_server_username": "mailer",
            "smtp_server_password": "smtp-pass-do-not-leak",
        }
        assert (await world.client.put(SETTINGS, json=stored, headers=admin)).status_code == 200
        # The test body leaves the password empty: the stored one is used.
        response = await world.client.post(f"{WE}/testsmtp", json={"smtp_server_password": ""}, headers=admin)
        body = response.json()
        assert (response.status_code, body["status"]) == (200, "OK"), body
        assert body["details"]["auth_used"] == "PLAIN"
        assert mailbox.messages[0].rcpt_tos == ["heidi@example.com"]
        assert "smtp-pass-do-not-leak" not in response.text
        other = await world.client.post(f"{WE}/testsmtp", json={"test_recipient": "ops@example.com"}, headers=admin)
        assert other.json()["status"] == "OK"
        assert mailbox.messages[1].rcpt_tos == ["ops@example.com"]
        assert "test_recipient" not in (await world.client.get(SETTINGS, headers=admin)).json()
        wrong = await world.client.post(f"{WE}/testsmtp", json={"smtp_server_password": "nope-nope"}, headers=admin)
        assert (wrong.json()["status"], wrong.json()["details"]["error_stage"]) == ("ERROR", "auth")
    finally:
        controller.stop()


async def test_testsmtp_validates_its_body(world: World) -> None:
    assert_error(
        await world.client.post(f"{WE}/testsmtp", json={"smtp_server_port": -1}, headers=await world.as_("heidi")),
        400,
        "VALUE_OUT_OF_BOUNDS",
        "smtp_server_port",
    )
    assert_error(
        await world.client.post(
            f"{WE}/testsmtp",
            json={"test_recipient": "x@example.com\r\nBcc: y@example.com"},
            headers=await world.as_("heidi"),
        ),
        400,
        "INVALID_REQUEST_DATA",
        "test_recipient",
    )


async def test_the_go_sdks_zero_values_count_as_not_given(world: World) -> None:
    from tests.compat.privx_go import ZERO_WORKFLOW_SETTINGS

    admin = await world.as_("heidi")
    assert (await world.client.put(SETTINGS, json=GO_SDK_BODY, headers=admin)).status_code == 200
    # A struct with only what the script sets; every other field is Go's zero value.
    partial = {**ZERO_WORKFLOW_SETTINGS, "smtp_server": "relay.example.com", "smtp_server_port": 25}
    answer = await world.client.put(SETTINGS, json=partial, headers=admin)
    assert answer.status_code == 200, answer.text
    stored = (await world.client.get(SETTINGS, headers=admin)).json()
    assert (stored["smtp_server"], stored["smtp_server_port"]) == ("relay.example.com", 25)
    assert stored["smtp_server_protocol"] == "STARTTLS"  # "" kept the stored enum
    assert stored["smtp_authentication_mode"] == "PASSWORD"
    assert stored["smtp_provider"] == "GENERIC"
    assert stored["smtp_sender_address"] == "grantflow@example.com"
    assert stored["privx_backend_address"] == "https://grantflow.example.com"
    assert (await world.client.put(SETTINGS, json=ZERO_WORKFLOW_SETTINGS, headers=admin)).status_code == 200
    tested = await world.client.post(f"{WE}/testsmtp", json=ZERO_WORKFLOW_SETTINGS, headers=admin)
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] in ("OK", "ERROR")


async def test_enabling_mail_needs_a_server_even_when_it_is_sent_empty(world: World) -> None:
    admin = await world.as_("heidi")
    body = {"smtp_server_enabled": True, "smtp_server": "", "smtp_sender_address": "grantflow@example.com"}
    assert_error(
        await world.client.put(SETTINGS, json=body, headers=admin), 400, "REQUIRED_VALUE_MISSING", "smtp_server"
    )
