"""The PrivX SDKs' call sequences over HTTPS, end to end (docs/privx-compatibility.md).

The administrator works through the Python SDK's calls with an API client; carol logs in the way privx-sdk-go
logs a user in (authorization code + PKCE) and reads errors the way it does.
"""

from __future__ import annotations

import ssl
from datetime import timedelta

import httpx

from grantflow.kit.clock import FrozenClock
from tests.compat import privx_go
from tests.compat.privx_python import PrivXLike
from tests.conftest import ADMIN_PASSWORD, CLIENT_SECRET
from tests.factories import bearer

US = "/local-user-store/api/v1"
RS = "/role-store/api/v1"
WE = "/workflow-engine/api/v1"


def test_python_sdk_walk(tls_server: tuple[str, int, str], clock: FrozenClock) -> None:
    host, port, ca = tls_server

    def sdk() -> PrivXLike:
        return PrivXLike(host, port, ca, "privx-external", CLIENT_SECRET, now=lambda: clock.now().timestamp())

    # Status works before logging in, without a token.
    assert sdk().call("GET", f"{WE}/status", 200).ok

    admin = sdk()
    admin.authenticate("admin", ADMIN_PASSWORD)
    roles = {r["name"]: r["id"] for r in admin.call("GET", f"{RS}/roles", 200).data["items"]}
    created = admin.call(
        "POST", f"{US}/api-clients", 201, {"name": "automation", "roles": [{"id": roles["privx-admin"]}]}
    )
    assert created.ok, created.data
    client_info = admin.call("GET", f"{US}/api-clients/{created.data['id']}", 200).data
    assert client_info["oauth_client_id"] == "privx-external"
    assert client_info["oauth_client_secret"] == CLIENT_SECRET

    api = sdk()
    api.authenticate(client_info["id"], client_info["secret"])
    ids = {}
    for name in ("alice", "bob", "carol"):
        made = api.call(
            "POST",
            f"{US}/users",
            201,
            {"username": name, "email": f"{name}@example.com", "password": {"password": f"{name}-first-pw"}},
        )
        assert made.ok, made.data
        ids[name] = made.data["id"]
        assert api.call("PUT", f"{US}/users/{made.data['id']}/password", 200, {"password": f"{name}-password"}).ok
    for name, permissions in (("linux-admins", []), ("team-leads", ["workflows-requests"]), ("security", [])):
        made = api.call(
            "POST", f"{RS}/roles", 201, {"name": name, "permissions": permissions, "source_rules": {"rules": None}}
        )
        assert made.ok, made.data
        roles[name] = made.data["id"]

    # Find bob by e-mail, read his roles, append one, write the whole list back (examples/add-role.py).
    found = api.call("POST", f"{RS}/users/search", 200, {"keywords": "bob@example.com"}).data
    assert [u["id"] for u in found["items"]] == [ids["bob"]]
    for name, role in (("bob", "team-leads"), ("carol", "security")):
        held = api.call("GET", f"{RS}/users/{ids[name]}/roles", 200).data["items"]
        held.append({"id": roles[role], "name": role, "grant_type": "PERMANENT", "explicit": True})
        assert api.call("PUT", f"{RS}/users/{ids[name]}/roles", 200, held).ok
    members = api.call("GET", f"{RS}/roles/{roles['team-leads']}/members", 200, query={"offset": 0, "limit": 500}).data
    assert [m["principal"] for m in members["items"]] == ["bob"]

    workflow = {
        "name": "linux-admins, two steps",
        "grant_types": ["PERMANENT"],
        "target_roles": [{"id": roles["linux-admins"]}],
        "action": "GRANT",
        "can_bypass_revoke_workflow": True,
        "steps": [
            {"name": "lead", "match": "ANY", "approvers": [{"role": {"id": roles["team-leads"]}}]},
            {"name": "security", "match": "ALL", "approvers": [{"role": {"id": roles["security"]}}]},
        ],
    }
    assert api.call("POST", f"{WE}/workflows", 201, workflow).ok

    people = {}
    for name in ("alice", "bob"):
        people[name] = sdk()
        people[name].authenticate(name, f"{name}-password")
    request = people["alice"].call(
        "POST", f"{WE}/requests", 201, {"requested_role": {"id": roles["linux-admins"]}, "grant_type": "PERMANENT"}
    )
    assert request.ok, request.data
    request_id = request.data["id"]

    # Tokens run out while the approvers take their time; the SDK logs in again by itself.
    clock.advance(timedelta(seconds=400))
    decision = people["bob"].call(
        "POST", f"{WE}/requests/{request_id}/decision", 200, {"step": 0, "decision": "APPROVED"}
    )
    assert decision.ok
    assert people["bob"].logins == 2

    # carol logs in as privx-sdk-go logs a user in, over the same HTTPS, and reads errors as Go does.
    with httpx.Client(
        base_url=f"https://{host}:{port}",
        verify=ssl.create_default_context(cadata=ca),
        headers={"User-Agent": "privx-sdk-go"},
    ) as go:
        carol = bearer(privx_go.log_in(go, "carol", "carol-password")["access_token"])
        decision_url = f"{WE}/requests/{request_id}/decision"
        stale = go.post(decision_url, json={"step": 0, "decision": "APPROVED"}, headers=carol)
        assert privx_go.go_error_text(stale) == (
            "error: VALUE_OUT_OF_BOUNDS, message: step 0 is not the current step (1), property: step"
        )
        assert go.post(decision_url, json={"step": 1, "decision": "APPROVED"}, headers=carol).status_code == 200
    assert people["alice"].call("GET", f"{WE}/requests/{request_id}", 200).data["status"] == "APPROVED"

    # The granted membership shows in the role store, marked with the request that made it.
    held = api.call("GET", f"{RS}/users/{ids['alice']}/roles", 200).data["items"]
    granted = [r for r in held if r["id"] == roles["linux-admins"]]
    assert granted[0]["explicit"] is True
    assert granted[0]["granted_by_request"] == request_id
    assert api.call("GET", f"{RS}/users/{ids['alice']}", 200).data["roles"][0]["name"] == "linux-admins"

    # bob, an original approver, revokes it; the membership is gone.
    assert people["bob"].call("POST", f"{WE}/requests/{request_id}/role/revoke", 200).ok
    held = api.call("GET", f"{RS}/users/{ids['alice']}/roles", 200).data["items"]
    assert roles["linux-admins"] not in [r["id"] for r in held]
    assert api.call("DELETE", f"{US}/users/{ids['carol']}", 200).ok
