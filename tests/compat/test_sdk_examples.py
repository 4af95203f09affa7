"""The PrivX Python SDK's example scripts that touch the user store, the role store and auth, replayed call for call
over HTTPS with the SDK's own rules (its expected status per method): user-import-json.py, add-role.py with each
grant type it offers, and get-role-members.py. example-role-creation.py needs directory sources (issue 15)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from grantflow.kit.clock import FrozenClock
from tests.compat.privx_python import PrivXLike
from tests.conftest import ADMIN_PASSWORD, CLIENT_SECRET

pytestmark = pytest.mark.slow  # a TLS server in a thread
US = "/local-user-store/api/v1"
RS = "/role-store/api/v1"
# The shape of the example's data/user-import.json (values of this test's own).
PEOPLE = [
    {
        "username": name,
        "password": {"password": f"{name}-example-pw"},
        "full_name": full,
        "email": f"{name}@example.com",
    }
    for name, full in (("alice", "Alice Example"), ("bob", "Bob Example"), ("erin", "Erin Example"))
]


def admin_api(tls_server: tuple[str, int, str], clock: FrozenClock) -> PrivXLike:
    host, port, ca = tls_server
    api = PrivXLike(host, port, ca, "privx-external", CLIENT_SECRET, now=lambda: clock.now().timestamp())
    api.authenticate("admin", ADMIN_PASSWORD)
    return api


def requested_role(role_id: str, name: str, grant_type: str, hours: int, now: datetime) -> dict[str, object]:
    """add-role.py's get_requested_role: the entry it appends to the roles it read."""
    start = now.replace(tzinfo=None)
    end = start + timedelta(hours=hours)
    return {
        "PERMANENT": {
            "id": role_id,
            "name": name,
            "grant_type": "PERMANENT",
            "grant_start": None,
            "grant_end": None,
            "floating_length": None,
            "explicit": True,
        },
        "FLOATING": {
            "id": role_id,
            "name": name,
            "grant_type": "FLOATING",
            "grant_start": None,
            "grant_end": None,
            "floating_length": hours,
            "explicit": True,
        },
        "TIME_RESTRICTED": {
            "id": role_id,
            "name": name,
            "grant_type": "TIME_RESTRICTED",
            "grant_start": start.isoformat() + "Z",
            "grant_end": end.isoformat() + "Z",
            "floating_length": 0,
            "explicit": True,
        },
    }[grant_type]


def test_user_import_json(tls_server: tuple[str, int, str], clock: FrozenClock) -> None:
    api = admin_api(tls_server, clock)
    assert all(api.call("POST", f"{US}/users", 201, person).ok for person in PEOPLE)
    again = [api.call("POST", f"{US}/users", 201, person) for person in PEOPLE]  # the log lists each failure
    assert [r.data["status"] for r in again] == [409, 409, 409]
    assert {r.data["details"]["error_code"] for r in again} == {"VALUE_DUPLICATE"}
    listed = api.call("GET", f"{US}/users", 200, query={"limit": 100}).data["items"]
    assert {u["username"]: u["full_name"] for u in listed if u["username"] != "admin"} == {
        p["username"]: p["full_name"] for p in PEOPLE
    }


@pytest.mark.parametrize("grant_type", ["FLOATING", "PERMANENT", "TIME_RESTRICTED"])
def test_add_role(tls_server: tuple[str, int, str], clock: FrozenClock, grant_type: str) -> None:
    api = admin_api(tls_server, clock)
    assert api.call("POST", f"{US}/users", 201, PEOPLE[0]).ok
    assert api.call("POST", f"{RS}/roles", 201, {"name": "Example Role"}).ok
    # get_user_id: search by e-mail, match the item's email
    found = api.call("POST", f"{RS}/users/search", 200, {"keywords": "alice@example.com"})
    user_id = next(i["id"] for i in found.data["items"] if i.get("email") == "alice@example.com")
    # get_role_id: every role, match the name
    role_id = next(r["id"] for r in api.call("GET", f"{RS}/roles", 200).data["items"] if r["name"] == "Example Role")
    roles = api.call("GET", f"{RS}/users/{user_id}/roles", 200).data["items"]
    roles.append(requested_role(role_id, "Example Role", grant_type, 1, clock.now()))  # its utcnow(), the server's now
    updated = api.call("PUT", f"{RS}/users/{user_id}/roles", 200, roles)
    assert updated.ok, updated.data
    held = {r["name"]: r for r in api.call("GET", f"{RS}/users/{user_id}/roles", 200).data["items"]}
    assert held["Example Role"]["grant_type"] == grant_type
    assert held["privx-user"]["implicit"] is True
    if grant_type == "FLOATING":
        assert held["Example Role"]["floating_length"] == 1


def test_get_role_members(tls_server: tuple[str, int, str], clock: FrozenClock) -> None:
    api = admin_api(tls_server, clock)
    ids = [api.call("POST", f"{US}/users", 201, person).data["id"] for person in PEOPLE[:2]]
    role_id = api.call("POST", f"{RS}/roles", 201, {"name": "Example Role"}).data["id"]
    for user_id in ids:
        assert api.call("PUT", f"{RS}/users/{user_id}/roles", 200, [{"id": role_id, "explicit": True}]).ok
    roles = [{"name": r["name"], "id": r["id"]} for r in api.call("GET", f"{RS}/roles", 200).data["items"]]
    wanted = ["principal", "full_name", "email", "samaccountname", "windows_account", "unix_account", "source_type"]
    rows = []
    for role in roles:
        members = api.call("GET", f"{RS}/roles/{role['id']}/members", 200, query={"offset": 0, "limit": 50})
        assert members.ok, members.data
        rows += [{"role_name": role["name"], **{k: m.get(k, "") for k in wanted}} for m in members.data["items"]]
    example = sorted(
        (r["principal"], r["full_name"], r["email"], r["source_type"]) for r in rows if r["role_name"] == "Example Role"
    )
    assert example == [
        ("alice", "Alice Example", "alice@example.com", "LOCAL"),
        ("bob", "Bob Example", "bob@example.com", "LOCAL"),
    ]
