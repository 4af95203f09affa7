"""People of an OpenID provider (the npm package oidc-provider, run by the tests) sign in to the web UI and
exchange the provider's ID tokens at `token/login`; their groups give roles; every forged or replayed token is
refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from grantflow.identity import oidc
from grantflow.kit.clock import FrozenClock
from tests.compat.privx_python import PrivXLike
from tests.conftest import CLIENT_SECRET
from tests.factories import World, make_api_client
from tests.identity.conftest import map_group
from tests.identity.provider import CLIENT_ID, IdentityProvider, log_in, running_provider
from tests.identity.provider import CLIENT_SECRET as IDP_SECRET

RS = "/role-store/api/v1"
EXCHANGE = "/auth/api/v1/token/login"
CALLBACK = "http://grantflow.test/sign-in/oidc/callback"


@pytest.fixture
def clock() -> FrozenClock:
    """The provider signs with the real time, so grantflow's clock starts at it here."""
    return FrozenClock(datetime.now(UTC))


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[IdentityProvider]:
    with running_provider(tmp_path / "idp", [CALLBACK]) as provider:
        yield provider


async def _add_provider(world: World, idp: IdentityProvider, **connection: Any) -> str:
    body = {
        "name": "Corp IdP",
        "connection": {
            "type": "OIDC",
            "issuer": idp.issuer,
            "client_id": CLIENT_ID,
            "client_secret": IDP_SECRET,
            **connection,
        },
    }
    created = await world.client.post(f"{RS}/sources", json=body, headers=await world.as_("admin"))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _start(world: World, source_id: str) -> str:
    """grantflow sends the browser to the provider; where to."""
    started = await world.client.get(f"/sign-in/oidc/start/{source_id}?next=/")
    assert started.status_code == 303, started.text
    return started.headers["location"]


def _at_provider(location: str, username: str) -> str:
    """The person signs in at the provider; the URL it sends them back to grantflow with."""
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        interaction = browser.get(location)
        assert interaction.status_code in (302, 303), interaction.text
        return log_in(browser, httpx.URL(location).join(interaction.headers["location"]).__str__(), username)


async def _roles_of(world: World, username: str) -> dict[str, bool]:
    admin = await world.as_("admin")
    found = (await world.client.post(f"{RS}/users/search", json={"keywords": username}, headers=admin)).json()
    user_id = found["items"][0]["id"]
    held = (await world.client.get(f"{RS}/users/{user_id}/roles", headers=admin)).json()["items"]
    return {r["name"]: r["implicit"] for r in held}


async def test_signing_in_to_the_web_ui_with_the_provider_gives_the_groups_roles(
    world: World, idp: IdentityProvider
) -> None:
    source_id = await _add_provider(world, idp)
    await map_group(world, "team-leads", source_id, "leads")
    page = await world.client.get("/sign-in")
    assert "Sign in with Corp IdP" in page.text
    back = _at_provider(await _start(world, source_id), "theo")
    assert back.startswith(CALLBACK)
    signed_in = await world.client.get(back)
    assert signed_in.status_code == 303, signed_in.text
    home = await world.client.get(signed_in.headers["location"], follow_redirects=True)
    assert home.status_code == 200
    assert home.url.path != "/sign-in"
    assert "Theo Idp" in home.text
    assert (await _roles_of(world, "theo"))["team-leads"] is True


async def test_a_return_that_is_not_this_browsers_sign_in_is_refused(world: World, idp: IdentityProvider) -> None:
    source_id = await _add_provider(world, idp)
    back = httpx.URL(_at_provider(await _start(world, source_id), "theo"))
    for other in ("someone-elses-state", "état-étranger"):  # not ASCII either: refused, not a 500
        refused = await world.client.get(str(back.copy_set_param("state", other)))
        assert refused.status_code == 400
        assert "does not belong to this browser" in refused.text
    home = await world.client.get("/", follow_redirects=True)
    assert home.url.path == "/sign-in"  # still signed out


async def test_a_code_obtained_for_another_nonce_is_refused(world: World, idp: IdentityProvider) -> None:
    """A code obtained for another nonce, returned under this browser's state: the ID token gives it away."""
    source_id = await _add_provider(world, idp)
    ours = httpx.URL(await _start(world, source_id))
    injected = _at_provider(str(ours.copy_set_param("nonce", "an-attackers-nonce")), "nadia")
    refused = await world.client.get(injected)
    assert refused.status_code == 400
    assert "nonce" in refused.text


async def test_the_same_nonce_signs_in_once(world: World, idp: IdentityProvider) -> None:
    """Two codes for one authorization request (same state, nonce and PKCE): only the first signs in."""
    source_id = await _add_provider(world, idp)
    location = await _start(world, source_id)
    first, second = _at_provider(location, "theo"), _at_provider(location, "theo")
    flow_cookie = world.client.cookies.get("grantflow_oidc", path="/sign-in/oidc")
    assert (await world.client.get(first)).status_code == 303
    world.client.cookies.set("grantflow_oidc", flow_cookie or "", path="/sign-in/oidc")  # the replayed cookie
    replayed = await world.client.get(second)
    assert replayed.status_code == 400
    assert "already used" in replayed.text


async def test_the_python_sdk_exchanges_a_provider_token(
    world: World, idp: IdentityProvider, tls_server: tuple[str, int, str], session: Any, runtime: Any
) -> None:
    source_id = await _add_provider(world, idp)
    await map_group(world, "security", source_id, "sre")
    client, secret = await make_api_client(session, runtime, "exchanger")
    host, port, ca = tls_server
    api = PrivXLike(host, port, ca, "privx-external", CLIENT_SECRET)
    api.authenticate(str(client.id), secret)
    exchanged = api.exchange_external_jwt_token(
        {"token": idp.id_token("nadia"), "scope": "privx-user", "client_id": "privx-external"}
    )
    assert exchanged.ok, exchanged.data
    claims = jwt.decode(exchanged.data["access_token"], options={"verify_signature": False})
    assert "workflowsRequests" in claims["scope"]  # security carries workflows-requests: given by the sre group
    assert (await _roles_of(world, "nadia"))["security"] is True


def _hs256_with_the_public_key(idp: IdentityProvider) -> str:
    public = idp.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"' + idp.kid.encode() + b'"}').rstrip(b"=")
    valid = jwt.decode(idp.forge(), options={"verify_signature": False})

    payload = base64.urlsafe_b64encode(json.dumps(valid).encode()).rstrip(b"=")

    signature = base64.urlsafe_b64encode(hmac.new(public, header + b"." + payload, hashlib.sha256).digest()).rstrip(
        b"="
    )
    return (header + b"." + payload + b"." + signature).decode()


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(lambda idp: idp.forge(aud="another-client"), id="wrong-aud"),
        pytest.param(lambda idp: idp.forge(iss=idp.issuer + "/elsewhere"), id="wrong-iss"),
        pytest.param(lambda idp: idp.forge(iss="https://idp.unconfigured.example"), id="unconfigured-issuer"),
        pytest.param(lambda idp: idp.forge(exp=int(datetime.now(UTC).timestamp()) - 3600), id="expired"),
        pytest.param(
            lambda idp: jwt.encode(
                {**jwt.decode(idp.forge(), options={"verify_signature": False})}, None, algorithm="none"
            ),
            id="alg-none",
        ),
        pytest.param(_hs256_with_the_public_key, id="hs256-with-the-public-key"),
        pytest.param(lambda idp: idp.forge()[:-8] + "AAAAAAAA", id="tampered-signature"),
    ],
)
async def test_forged_tokens_are_refused_at_token_login(world: World, idp: IdentityProvider, forged: Any) -> None:
    await _add_provider(world, idp)
    good = await world.client.post(EXCHANGE, json={"token": idp.forge(), "client_id": "privx-external"})
    assert good.status_code == 200, good.text  # the forger's own valid token passes: each case differs in one thing
    refused = await world.client.post(EXCHANGE, json={"token": forged(idp), "client_id": "privx-external"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_grant"


async def test_a_provider_user_cannot_use_the_password_grant(world: World, idp: IdentityProvider) -> None:
    await _add_provider(world, idp)
    assert (
        await world.client.post(EXCHANGE, json={"token": idp.forge(), "client_id": "privx-external"})
    ).status_code == 200
    answer = await world.client.post(
        "/auth/api/v1/oauth/token",
        data={"grant_type": "password", "username": "nadia", "password": "nadia-idp-pw"},
        auth=("privx-external", CLIENT_SECRET),
    )
    assert answer.status_code == 400


async def test_a_rotated_provider_key_is_fetched_when_a_token_names_it(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider restarts with a new key: the first token that names it makes grantflow fetch the JWKS again
    (normally at most every 10 s; here at once, so the test need not wait)."""
    monkeypatch.setattr(oidc, "JWKS_RETRY_SECONDS", 0.0)
    with running_provider(tmp_path / "before", [CALLBACK]) as before:
        await _add_provider(world, before)
        exchange = {"token": before.forge(), "client_id": "privx-external"}
        assert (await world.client.post(EXCHANGE, json=exchange)).status_code == 200
        port = int(httpx.URL(before.issuer).port or 0)
    with running_provider(tmp_path / "after", [CALLBACK], port=port) as after:
        assert after.kid != before.kid
        rotated = await world.client.post(EXCHANGE, json={"token": after.forge(), "client_id": "privx-external"})
        assert rotated.status_code == 200, rotated.text
        stale = await world.client.post(EXCHANGE, json={"token": before.forge(), "client_id": "privx-external"})
        assert stale.status_code == 400  # the retired key is no longer published


async def test_a_provider_cannot_sign_someone_in_as_a_local_user(world: World, idp: IdentityProvider) -> None:
    """The token names `alice`, a local user: grantflow does not hand her account to the provider."""
    await _add_provider(world, idp)
    taken = await world.client.post(
        EXCHANGE, json={"token": idp.forge(sub="x-1", preferred_username="alice"), "client_id": "privx-external"}
    )
    assert taken.status_code == 400
    assert taken.json()["error"] == "invalid_grant"
