"""The authorization-code + PKCE flow as privx-sdk-go performs it, refresh tokens, logout, JWKS, key rotation,
and the throttling of failed logins, over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import jwt
import pytest

from grantflow.auth.tokens import rotate
from grantflow.kit.clock import FrozenClock
from grantflow.runtime import Runtime
from tests.compat import privx_go
from tests.conftest import ADMIN_PASSWORD, CLIENT_SECRET
from tests.factories import TOKEN_URL, WE, bearer


@pytest.fixture
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


def _authorized(http: httpx.Client, verifier_challenge: tuple[str, str] | None = None) -> tuple[str, str, str]:
    """(code, verifier, state) after authorize + login as admin."""
    verifier, challenge = verifier_challenge or privx_go.pkce_pair()
    token = privx_go.login_token(privx_go.authorize(http, challenge, "st-1"))
    answer = http.post("/auth/api/v1/login", json={"username": "admin", "password": ADMIN_PASSWORD, "token": token})
    assert answer.status_code == 200, answer.text
    return answer.json()["code"], verifier, answer.json()["state"]


def test_go_sdk_user_login_then_refresh(http: httpx.Client) -> None:
    tokens = privx_go.log_in(http, "admin", ADMIN_PASSWORD)
    assert isinstance(tokens["expires_in"], int)
    assert tokens["refresh_token"]
    workflows = http.get(f"{WE}/workflows", headers={**bearer(tokens["access_token"]), "User-Agent": "privx-sdk-go"})
    assert workflows.status_code == 200
    refreshed = privx_go.refresh(http, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    first, second = (
        jwt.decode(t, options={"verify_signature": False})
        for t in (tokens["access_token"], refreshed.json()["access_token"])
    )
    assert first["sessionid"] == second["sessionid"]
    assert refreshed.json()["refresh_token"] != tokens["refresh_token"]


def test_authorize_answers_307_with_the_login_token(http: httpx.Client) -> None:
    _, challenge = privx_go.pkce_pair()
    response = privx_go.authorize(http, challenge, "xyz")
    assert response.status_code == 307
    assert privx_go.login_token(response)


def test_authorize_requires_pkce_and_a_known_client(http: httpx.Client) -> None:
    plain = http.get(
        "/auth/api/v1/oauth/authorize",
        params={"client_id": "privx-ui", "redirect_uri": "/cb", "response_type": "code", "state": "s"},
        follow_redirects=False,
    )
    assert (plain.status_code, plain.json()["error"]) == (400, "invalid_request")
    _, challenge = privx_go.pkce_pair()
    unknown = http.get(
        "/auth/api/v1/oauth/authorize",
        params={
            "client_id": "evil",
            "redirect_uri": "/cb",
            "response_type": "code",
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        follow_redirects=False,
    )
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_client")


def test_login_state_is_the_one_given_to_authorize(http: httpx.Client) -> None:
    _, _, state = _authorized(http)
    assert state == "st-1"


def test_wrong_password_at_login_is_a_clean_400(http: httpx.Client) -> None:
    _, challenge = privx_go.pkce_pair()
    token = privx_go.login_token(privx_go.authorize(http, challenge, "s"))
    answer = http.post("/auth/api/v1/login", json={"username": "admin", "password": "wrong", "token": token})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")


def test_code_is_single_use(http: httpx.Client) -> None:
    code, verifier, _ = _authorized(http)
    assert privx_go.exchange(http, code, verifier).status_code == 200
    replay = privx_go.exchange(http, code, verifier)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")


def test_code_with_a_wrong_verifier_or_redirect_is_refused(http: httpx.Client) -> None:
    code, verifier, _ = _authorized(http)
    other_verifier, _ = privx_go.pkce_pair()
    wrong = privx_go.exchange(http, code, other_verifier)
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    elsewhere = privx_go.exchange(http, code, verifier, redirect_uri="/somewhere-else")
    assert (elsewhere.status_code, elsewhere.json()["error"]) == (400, "invalid_grant")
    # Neither attempt spent the code: the right verifier still works.
    assert privx_go.exchange(http, code, verifier).status_code == 200


def test_code_expires_after_five_minutes(http: httpx.Client, clock: FrozenClock) -> None:
    code, verifier, _ = _authorized(http)
    clock.advance(timedelta(minutes=5, seconds=1))
    late = privx_go.exchange(http, code, verifier)
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")


def test_reused_refresh_token_ends_the_session(http: httpx.Client) -> None:
    tokens = privx_go.log_in(http, "admin", ADMIN_PASSWORD)
    rotated = privx_go.refresh(http, tokens["refresh_token"]).json()
    stolen = privx_go.refresh(http, tokens["refresh_token"])
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    # The legitimate holder's newer token died with the session.
    assert privx_go.refresh(http, rotated["refresh_token"]).status_code == 400


def _new_user(http: httpx.Client, admin: dict[str, str], username: str, password: str) -> httpx.Response:
    created = http.post(
        "/local-user-store/api/v1/users", json={"username": username, "password": {"password": password}}, headers=admin
    )
    assert created.status_code == 201, created.text
    return created


def test_refresh_after_the_user_was_deleted(http: httpx.Client) -> None:
    admin = bearer(privx_go.log_in(http, "admin", ADMIN_PASSWORD)["access_token"])
    created = _new_user(http, admin, "temp", "temp-password")
    tokens = privx_go.log_in(http, "temp", "temp-password")
    assert http.delete(f"/local-user-store/api/v1/users/{created.json()['id']}", headers=admin).status_code == 200
    after = privx_go.refresh(http, tokens["refresh_token"])
    assert (after.status_code, after.json()["error"]) == (400, "invalid_grant")
    # Deleting the user removed the session's refresh tokens with it, so the token is simply no longer valid.
    assert after.json()["error_description"] == "the refresh token is not valid"


def test_password_grant_refresh_needs_the_client_secret(http: httpx.Client) -> None:
    tokens = http.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
        auth=("privx-external", CLIENT_SECRET),
    ).json()
    bare = http.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": "privx-external"},
    )
    assert bare.status_code == 401
    ok = http.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=("privx-external", CLIENT_SECRET),
    )
    assert ok.status_code == 200, ok.text


def test_logout_ends_the_refresh_tokens(http: httpx.Client) -> None:
    tokens = privx_go.log_in(http, "admin", ADMIN_PASSWORD)
    assert http.post("/auth/api/v1/logout", headers=bearer(tokens["access_token"])).status_code == 200
    assert privx_go.refresh(http, tokens["refresh_token"]).status_code == 400


def test_jwks_verifies_the_tokens(http: httpx.Client) -> None:
    token = privx_go.log_in(http, "admin", ADMIN_PASSWORD)["access_token"]
    keys = http.get("/auth/api/v1/jwks").json()
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in keys["keys"] if k["kid"] == kid)
    assert "d" not in jwk
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(
        token,
        key,
        algorithms=["EdDSA"],
        options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert claims["iss"] == "grantflow"


async def test_tokens_signed_before_a_rotation_stay_valid(client: httpx.AsyncClient, runtime: Runtime) -> None:
    from tests.factories import token_for

    old = await token_for(client, "admin", ADMIN_PASSWORD)
    async with runtime.sessionmaker() as session:
        new_key = await rotate(session, runtime.secret_box, runtime.clock.now(), timedelta(hours=1))
        await session.commit()
    async with runtime.sessionmaker() as session:
        await runtime.keyring.load(session)
    new = await token_for(client, "admin", ADMIN_PASSWORD)
    assert jwt.get_unverified_header(new)["kid"] == new_key.kid != jwt.get_unverified_header(old)["kid"]
    for token in (old, new):
        assert (await client.get(f"{WE}/workflows", headers=bearer(token))).status_code == 200


def test_failed_logins_are_throttled_per_account(http: httpx.Client) -> None:
    def attempt(password: str) -> httpx.Response:
        return http.post(
            TOKEN_URL,
            data={"grant_type": "password", "username": "admin", "password": password},
            auth=("privx-external", CLIENT_SECRET),
        )

    for _ in range(10):
        assert attempt("wrong").status_code == 400
    throttled = attempt(ADMIN_PASSWORD)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    # Other accounts are not affected.
    other = http.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": "nobody", "password": "x"},
        auth=("privx-external", CLIENT_SECRET),
    )
    assert other.status_code == 400


def test_go_sdk_reads_why_a_login_failed(http: httpx.Client) -> None:
    """privx-sdk-go parses `error_code` from every failed call, the login and the token endpoint included."""
    _, challenge = privx_go.pkce_pair()
    token = privx_go.login_token(privx_go.authorize(http, challenge, "state-1"))
    refused = http.post("/auth/api/v1/login", json={"username": "admin", "password": "wrong", "token": token})
    assert refused.status_code == 400
    assert privx_go.go_error_text(refused) == "error: PERMISSION_DENIED, message: invalid username or password"
    assert refused.json()["error"] == "invalid_grant"  # RFC 6749 readers keep their field
    grant = http.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": "admin", "password": "wrong"},
        auth=("privx-external", CLIENT_SECRET),
    )
    assert (grant.json()["error"], grant.json()["error_description"]) == (
        "invalid_grant",
        "invalid username or password",
    )
    assert privx_go.go_error_text(grant) == "error: PERMISSION_DENIED, message: invalid username or password"


def test_go_sdk_error_text_from_a_privx_error(http: httpx.Client) -> None:
    admin = bearer(privx_go.log_in(http, "admin", ADMIN_PASSWORD)["access_token"])
    response = http.post(f"{WE}/workflows", json={"name": "x", "target_roles": [], "steps": []}, headers=admin)
    text = privx_go.go_error_text(response)
    assert text.startswith("error: VALUE_OUT_OF_BOUNDS, message: ")
    assert "property: target_roles" in text
    assert ", {error: VALUE_OUT_OF_BOUNDS" in text


def test_wrong_client_secrets_do_not_lock_out_the_shared_client(http: httpx.Client) -> None:
    for _ in range(12):
        bad = http.post(
            TOKEN_URL,
            data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
            auth=("privx-external", "guess"),
        )
        assert bad.status_code == 401
    good = http.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
        auth=("privx-external", CLIENT_SECRET),
    )
    assert good.status_code == 200, good.text


def test_a_password_reset_ends_the_users_refresh_tokens(http: httpx.Client) -> None:
    admin = bearer(privx_go.log_in(http, "admin", ADMIN_PASSWORD)["access_token"])
    created = _new_user(http, admin, "reset-me", "first-password")
    user_id = created.json()["id"]
    before = privx_go.log_in(http, "reset-me", "first-password")
    reset = http.put(
        f"/local-user-store/api/v1/users/{user_id}/password", json={"password": "second-password"}, headers=admin
    )
    assert reset.status_code == 200
    refused = privx_go.refresh(http, before["refresh_token"])
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    profile = privx_go.log_in(http, "reset-me", "second-password")
    changed = http.put(
        f"/local-user-store/api/v1/users/{user_id}",
        json={"username": "reset-me", "password": {"password": "third-password"}},
        headers=admin,
    )
    assert changed.status_code == 200
    assert privx_go.refresh(http, profile["refresh_token"]).status_code == 400
    renamed = privx_go.log_in(http, "reset-me", "third-password")
    kept = http.put(
        f"/local-user-store/api/v1/users/{user_id}", json={"username": "reset-me", "password": {}}, headers=admin
    )
    assert kept.status_code == 200
    assert privx_go.refresh(http, renamed["refresh_token"]).status_code == 200  # no new password: sessions go on
