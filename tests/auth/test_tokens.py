"""Access tokens and the token endpoint: what gets a token, and what a forged or stale token gets."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.auth.tokens import KeyRing
from grantflow.kit.clock import FrozenClock
from grantflow.runtime import Runtime
from tests.conftest import ADMIN_PASSWORD, CLIENT_SECRET
from tests.factories import TOKEN_URL, WE, World, bearer, make_api_client, token_for, token_response

WORKFLOWS = f"{WE}/workflows"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def _admin_token(client: httpx.AsyncClient) -> str:
    return await token_for(client, "admin", ADMIN_PASSWORD)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error_code"] == "PERMISSION_DENIED"


async def test_password_grant_returns_what_both_sdks_read(client: httpx.AsyncClient) -> None:
    body = await token_response(client, "admin", ADMIN_PASSWORD)
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int)
    assert body["expires_in"] == 300
    assert "admin" in body["scope"].split()
    assert (await client.get(WORKFLOWS, headers=bearer(body["access_token"]))).status_code == 200


async def test_password_grant_accepts_parameters_in_the_query_string(client: httpx.AsyncClient) -> None:
    response = await client.post(
        TOKEN_URL,
        params={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
        auth=("privx-external", CLIENT_SECRET),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("auth", "form", "status", "error"),
    [
        (("privx-external", "wrong"), {"username": "admin", "password": ADMIN_PASSWORD}, 401, "invalid_client"),
        (("no-such-client", CLIENT_SECRET), {"username": "admin", "password": ADMIN_PASSWORD}, 401, "invalid_client"),
        (None, {"username": "admin", "password": ADMIN_PASSWORD}, 401, "invalid_client"),
        (("privx-external", CLIENT_SECRET), {"username": "admin", "password": "wrong"}, 400, "invalid_grant"),
        (("privx-external", CLIENT_SECRET), {"username": "nobody", "password": "wrong"}, 400, "invalid_grant"),
        (("privx-external", CLIENT_SECRET), {"username": "admin"}, 400, "invalid_request"),
    ],
)
async def test_password_grant_failures(
    client: httpx.AsyncClient, auth: tuple[str, str] | None, form: dict[str, str], status: int, error: str
) -> None:
    response = await client.post(TOKEN_URL, data={"grant_type": "password", **form}, auth=auth)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "access_token" not in response.json()
    assert ADMIN_PASSWORD not in response.text


async def test_unknown_user_and_wrong_password_answer_alike(client: httpx.AsyncClient) -> None:
    wrong = await client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": "admin", "password": "x"},
        auth=("privx-external", CLIENT_SECRET),
    )
    unknown = await client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": "ghost", "password": "x"},
        auth=("privx-external", CLIENT_SECRET),
    )
    assert wrong.json() == unknown.json()


async def test_unsupported_grant(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN_URL, data={"grant_type": "implicit"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_client_credentials_for_an_api_client(
    client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime
) -> None:
    api_client, secret = await make_api_client(session, runtime, "deploy-bot")
    ok = await client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, auth=(str(api_client.id), secret))
    assert ok.status_code == 200, ok.text
    claims = jwt.decode(ok.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == str(api_client.id)
    # The password grant takes an API client's id and secret as username and password, as the SDKs send them.
    as_password = await token_for(client, str(api_client.id), secret)
    assert jwt.decode(as_password, options={"verify_signature": False})["sub"] == str(api_client.id)
    bad = await client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, auth=(str(api_client.id), "nope"))
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"
    # A person's username and password are not client credentials.
    person = await client.post(TOKEN_URL, data={"grant_type": "client_credentials"}, auth=("admin", ADMIN_PASSWORD))
    assert person.status_code == 401


async def test_missing_or_malformed_authorization(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.get(WORKFLOWS))
    assert_unauthorized(await client.get(WORKFLOWS, headers={"Authorization": "Bearer "}))
    assert_unauthorized(await client.get(WORKFLOWS, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}))
    assert_unauthorized(await client.get(WORKFLOWS, headers=bearer("not.a.jwt")))
    assert_unauthorized(await client.get(WORKFLOWS, headers=bearer("garbage")))


async def test_alg_none_is_refused(client: httpx.AsyncClient) -> None:
    good = jwt.decode(await _admin_token(client), options={"verify_signature": False})
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(good)}."
    assert_unauthorized(await client.get(WORKFLOWS, headers=bearer(forged)))


async def test_hs256_signed_with_the_public_key_is_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    token = await _admin_token(client)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    async with runtime.sessionmaker() as session:
        from grantflow.auth.models import SigningKey

        key = await session.get(SigningKey, header["kid"])
    assert key is not None
    public_pem = key.public_key_pem
    # PyJWT refuses to HMAC with a PEM key, so sign by hand exactly as an attacker would.
    import hashlib
    import hmac

    signing_input = f"{_b64({'alg': 'HS256', 'kid': header['kid']})}.{_b64(claims)}"
    mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    assert_unauthorized(await client.get(WORKFLOWS, headers=bearer(forged)))


async def test_token_signed_by_an_unknown_key_is_refused(client: httpx.AsyncClient) -> None:
    claims = jwt.decode(await _admin_token(client), options={"verify_signature": False})
    stranger = Ed25519PrivateKey.generate()
    for kid in ("no-such-kid", jwt.get_unverified_header(await _admin_token(client))["kid"]):
        forged = jwt.encode(claims, stranger, algorithm="EdDSA", headers={"kid": kid})
        assert_unauthorized(await client.get(WORKFLOWS, headers=bearer(forged)))


async def test_tampered_payload_is_refused(client: httpx.AsyncClient) -> None:
    genuine = await _admin_token(client)
    # Used once first, so that the genuine token is among the verified ones the key ring remembers.
    assert (await client.get(WORKFLOWS, headers=bearer(genuine))).status_code == 200
    header, _, signature = genuine.split(".")
    claims = {
        "sub": str(uuid.uuid4()),
        "scope": "admin",
        "iss": "grantflow",
        "aud": "privx-external",
        "exp": 2**33,
        "iat": 0,
    }
    assert_unauthorized(await client.get(WORKFLOWS, headers=bearer(f"{header}.{_b64(claims)}.{signature}")))


async def test_expired_token_is_refused(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    token = await _admin_token(client)
    clock.advance(timedelta(seconds=300 + 4))  # inside the 5 s leeway
    assert (await client.get(WORKFLOWS, headers=bearer(token))).status_code == 200
    clock.advance(timedelta(seconds=2))
    assert_unauthorized(await client.get(WORKFLOWS, headers=bearer(token)))


async def test_token_from_another_issuer_is_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """Signed with grantflow's own key, but naming another issuer."""
    other = KeyRing(runtime.secret_box, "somebody-else", leeway_seconds=5)
    async with runtime.sessionmaker() as session:
        await other.load(session)
    forged = await _admin_token_from(other, client, runtime.clock.now())
    assert_unauthorized(await client.get(WORKFLOWS, headers=bearer(forged)))


async def _admin_token_from(
    keyring: KeyRing, client: httpx.AsyncClient, now: datetime, client_id: str = "privx-external"
) -> str:
    """An admin token as `keyring` signs it, for `client_id` and issued at `now`."""
    admin = jwt.decode(await _admin_token(client), options={"verify_signature": False})
    return keyring.issue(
        user_id=uuid.UUID(admin["sub"]),
        client_id=client_id,
        scopes=frozenset({"admin"}),
        permissions="",
        now=now,
        lifetime=300,
    )


async def test_token_for_another_audience_is_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """Signed with grantflow's own key and issuer, but addressed to a client grantflow does not issue tokens to."""
    elsewhere = await _admin_token_from(runtime.keyring, client, runtime.clock.now(), client_id="another-service")
    assert_unauthorized(await client.get(WORKFLOWS, headers=bearer(elsewhere)))


async def test_token_not_yet_valid_is_refused(client: httpx.AsyncClient, runtime: Runtime) -> None:
    """`nbf` a minute ahead (past the 5 s leeway): refused until then."""
    early = await _admin_token_from(runtime.keyring, client, runtime.clock.now() + timedelta(minutes=1))
    assert_unauthorized(await client.get(WORKFLOWS, headers=bearer(early)))


async def test_missing_scope_is_403(world: World) -> None:
    body = {"name": "x"}
    response = await world.client.post(WORKFLOWS, json=body, headers=await world.as_("alice"))
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    # alice holds only `user` and `workflowsRequests`: the workflow list needs a view scope.
    assert (await world.client.get(WORKFLOWS, headers=await world.as_("alice"))).status_code == 403
    assert (await world.client.get(WORKFLOWS, headers=await world.as_("ivan"))).status_code == 200


async def test_scopes_follow_roles_at_issue_time(world: World) -> None:
    async def scopes(name: str) -> set[str]:
        token = (await world.as_(name))["Authorization"].removeprefix("Bearer ")
        return set(jwt.decode(token, options={"verify_signature": False})["scope"].split())

    assert await scopes("alice") == {"user", "workflowsRequests"}
    assert await scopes("erin") == {"user", "workflowsRequests", "workflowsRequestOnBehalf"}
    assert await scopes("grace") == {"user", "workflowsRequests", "requestsView"}
    assert await scopes("heidi") == {"user", "workflowsRequests", "workflowsManage"}
    assert await scopes("ivan") == {"user", "workflowsRequests", "workflowsView"}
    assert "admin" in await scopes("admin")
