"""People of an LDAP directory (a real slapd) sign in to grantflow, their groups give roles through the roles'
source rules, and the sync keeps grantflow in line with the directory; every check a stranger could try to get
around is tried."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx

from grantflow.identity import directory as identity_directory
from grantflow.kit.clock import FrozenClock
from grantflow.runtime import Runtime
from tests.access_request.test_rules import assert_error
from tests.compat import privx_go
from tests.conftest import CLIENT_SECRET
from tests.factories import TOKEN_URL, WE, World, bearer, role_ref, workflow_body
from tests.identity.conftest import PASSWORDS, add_source, ldap_source, map_group
from tests.identity.directory import Directory, group_dn, person_dn, running_directory

RS = "/role-store/api/v1"
SOURCES = f"{RS}/sources"
TOOLS = "/grantflow/api/v1/sources"


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": username, "password": password},
        auth=("privx-external", CLIENT_SECRET),
    )


async def _token(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    answer = await _login(client, username, PASSWORDS[username])
    assert answer.status_code == 200, answer.text
    return bearer(answer.json()["access_token"])


async def test_directory_people_sign_in_request_and_approve_until_the_directory_says_otherwise(
    world: World, directory: Directory, runtime: Runtime, clock: FrozenClock
) -> None:
    source_id = await add_source(world, ldap_source(directory))
    await map_group(world, "team-leads", source_id, group_dn("approvers"))  # leads are nested in approvers
    await world.create_workflow(
        workflow_body(world.roles["linux-admins"], ("ANY", [world.roles["team-leads"]]), max_active_requests=-1)
    )
    lena = await _token(world.client, "lena")
    first = await world.client.post(
        f"{WE}/requests",
        json={"requested_role": role_ref(world.roles["linux-admins"]), "grant_type": "PERMANENT"},
        headers=lena,
    )
    assert first.status_code == 201, first.text

    omar = await _token(world.client, "omar")  # a team lead only through the directory's nested groups
    decision = {"step": 0, "decision": "APPROVED", "comment": "ok"}
    approved = await world.client.post(f"{WE}/requests/{first.json()['id']}/decision", json=decision, headers=omar)
    assert approved.status_code == 200, approved.text
    role = (await world.client.get(f"{RS}/roles/{world.roles['team-leads'].id}", headers=omar)).json()
    assert role["member_count"] == 3  # bob and frank directly, omar through the directory (petra: not seen yet)
    assert role["explicit_count"] == 2

    again = await world.client.post(
        f"{WE}/requests",
        json={"requested_role": role_ref(world.roles["linux-admins"]), "grant_type": "PERMANENT"},
        headers=lena,
    )
    assert again.status_code == 201, again.text

    directory.remove_member("leads", person_dn("omar"))
    synced = await world.client.post(f"{TOOLS}/{source_id}/sync", headers=await world.as_("admin"))
    assert synced.status_code == 200, synced.text
    assert synced.json()["users"] == 3
    refused = await world.client.post(f"{WE}/requests/{again.json()['id']}/decision", json=decision, headers=omar)
    assert refused.status_code == 404, refused.text  # no longer an approver: the request is not even visible
    petra = await _token(world.client, "petra")
    still = await world.client.post(f"{WE}/requests/{again.json()['id']}/decision", json=decision, headers=petra)
    assert still.status_code == 200, still.text


async def test_the_role_store_shows_directory_roles_as_implicit_and_put_leaves_them(
    world: World, directory: Directory
) -> None:
    source_id = await add_source(world, ldap_source(directory))
    await map_group(world, "security", source_id, f"(memberOf={group_dn('engineers')})")
    await _token(world.client, "lena")  # her first sign-in makes her user
    admin = await world.as_("admin")
    found = (await world.client.post(f"{RS}/users/search", json={"keywords": "lena"}, headers=admin)).json()
    lena_id = found["items"][0]["id"]
    roles = (await world.client.get(f"{RS}/users/{lena_id}/roles", headers=admin)).json()["items"]
    security = [r for r in roles if r["name"] == "security"]
    assert [(r["explicit"], r["implicit"]) for r in security] == [(False, True)]
    # A PUT of the explicit memberships (here: none) keeps what the directory gives.
    assert (await world.client.put(f"{RS}/users/{lena_id}/roles", json=[], headers=admin)).status_code == 200
    roles = (await world.client.get(f"{RS}/users/{lena_id}/roles", headers=admin)).json()["items"]
    assert "security" in [r["name"] for r in roles]


async def test_sources_are_listed_as_privx_lists_them_and_the_password_is_write_only(
    world: World, directory: Directory
) -> None:
    admin = await world.as_("admin")
    source_id = await add_source(world, ldap_source(directory))
    listed = (await world.client.get(SOURCES, headers=admin)).json()
    assert {s["name"] for s in listed["items"]} == {"Local users", "Corp directory"}  # the SDK example looks for it
    shown = (await world.client.get(f"{SOURCES}/{source_id}", headers=admin)).text
    assert "grantflow-service-secret" not in shown
    body = ldap_source(directory)
    body["connection"].pop("bind_password")
    assert (await world.client.put(f"{SOURCES}/{source_id}", json=body, headers=admin)).status_code == 200
    tested = await world.client.post(f"{TOOLS}/{source_id}/test", headers=admin)
    assert tested.json()["status"] == "OK", tested.text  # the stored password was kept
    assert "grantflow-service-secret" not in tested.text
    alice = await world.as_("alice")
    assert_error(await world.client.post(SOURCES, json=ldap_source(directory), headers=alice), 403, "PERMISSION_DENIED")
    plain = ldap_source(directory, starttls=False)
    refused = await world.client.post(SOURCES, json={**plain, "name": "plain"}, headers=admin)
    assert_error(refused, 400, "INVALID_REQUEST_DATA", "connection")
    for address in ("ldap://127.0.0.1:0", "ldap://127.0.0.1:70000", "ldap://127.0.0.1:x"):
        bad = await world.client.post(SOURCES, json=ldap_source(directory, address=address), headers=admin)
        assert_error(bad, 400, "INVALID_REQUEST_DATA", "connection.address")
    # Made an OpenID provider, the source does not keep the directory's bind password as its client secret.
    provider = {
        "name": "Corp directory",
        "connection": {"type": "OIDC", "issuer": "https://idp.example", "client_id": "gf"},
    }
    assert (await world.client.put(f"{SOURCES}/{source_id}", json=provider, headers=admin)).status_code == 200
    switched = (await world.client.get(f"{SOURCES}/{source_id}", headers=admin)).json()["connection"]
    assert (switched["type"], switched["client_secret_set"]) == ("OIDC", False)


async def test_an_empty_password_never_signs_in(world: World, directory: Directory) -> None:
    """This slapd, like Active Directory, answers a DN with an empty password as an (anonymous) success."""
    await add_source(world, ldap_source(directory))
    assert (await _login(world.client, "lena", "")).status_code == 400


async def test_a_filter_in_the_username_matches_nobody(world: World, directory: Directory) -> None:
    await add_source(world, ldap_source(directory))
    for guess in ("le*", "*)(uid=lena", "lena)(|(uid=*", "*"):
        answer = await _login(world.client, guess, PASSWORDS["lena"])
        assert answer.status_code == 400, (guess, answer.text)
    assert (await _login(world.client, "lena", PASSWORDS["lena"])).status_code == 200


async def test_a_directory_user_cannot_use_a_local_password_nor_take_a_local_name(
    world: World, directory: Directory
) -> None:
    await add_source(world, ldap_source(directory))
    directory.add_person("alice", "Alice Impostor", "alice@corp.example", "impostor-pw")
    assert (await _login(world.client, "alice", "impostor-pw")).status_code == 400  # alice is a local user
    assert (await _login(world.client, "alice", "alice-password")).status_code == 200


async def test_a_certificate_from_another_ca_is_refused(world: World, directory: Directory, tmp_path: Path) -> None:
    with running_directory(tmp_path / "other") as other:
        source_id = await add_source(world, ldap_source(directory, ca_file=str(other.ca_file)))
    tested = (await world.client.post(f"{TOOLS}/{source_id}/test", headers=await world.as_("admin"))).json()
    assert tested["status"] == "ERROR"
    assert "starttls" in tested["details"]
    assert "ca_file" in tested["hint"]
    assert (await _login(world.client, "lena", PASSWORDS["lena"])).status_code == 503


async def test_ldaps_with_the_right_ca_signs_in(world: World, directory: Directory) -> None:
    await add_source(world, ldap_source(directory, address=directory.ldaps_url, starttls=False))
    assert (await _login(world.client, "lena", PASSWORDS["lena"])).status_code == 200


async def test_a_server_that_strips_starttls_is_never_used_in_the_clear(world: World, tmp_path: Path) -> None:
    with running_directory(tmp_path / "stripped", tls=False) as stripped:
        stripped.add_person("lena", "Lena Berg", "lena@corp.example", PASSWORDS["lena"])
        source_id = await add_source(world, ldap_source(stripped))
        tested = (await world.client.post(f"{TOOLS}/{source_id}/test", headers=await world.as_("admin"))).json()
        assert tested["status"] == "ERROR"
        assert "starttls" in tested["details"]
        assert (await _login(world.client, "lena", PASSWORDS["lena"])).status_code == 503


async def test_the_sync_disables_people_the_directory_no_longer_has(world: World, directory: Directory) -> None:
    source_id = await add_source(world, ldap_source(directory))
    admin = await world.as_("admin")
    assert (await world.client.post(f"{TOOLS}/{source_id}/sync", headers=admin)).json()["users"] == 3
    lena = await _login(world.client, "lena", PASSWORDS["lena"])
    directory.delete(person_dn("lena"))
    synced = (await world.client.post(f"{TOOLS}/{source_id}/sync", headers=admin)).json()
    assert (synced["users"], synced["disabled"]) == (2, 1)
    assert (await _login(world.client, "lena", PASSWORDS["lena"])).status_code == 400
    refresh = await world.client.post(
        TOKEN_URL,
        data={"grant_type": "refresh_token", "refresh_token": lena.json()["refresh_token"]},
        auth=("privx-external", CLIENT_SECRET),
    )
    assert refresh.status_code == 400


async def test_the_go_sdks_code_flow_signs_a_directory_user_in(
    world: World, directory: Directory, live_server: str
) -> None:
    await add_source(world, ldap_source(directory))
    with httpx.Client(base_url=live_server, timeout=30) as http:
        tokens = await asyncio.to_thread(privx_go.log_in, http, "lena", PASSWORDS["lena"])
    assert tokens["access_token"]


async def test_each_source_is_synced_once_per_interval_by_whichever_replica_comes_first(
    world: World, directory: Directory, runtime: Runtime, clock: FrozenClock
) -> None:
    await add_source(world, ldap_source(directory, sync_interval_minutes=30))
    assert await identity_directory.run_due(runtime) == 1
    assert await identity_directory.run_due(runtime) == 0
    clock.advance(timedelta(minutes=30))
    assert await identity_directory.run_due(runtime) == 1


async def test_a_directory_that_stops_the_search_short_disables_nobody(world: World, tmp_path: Path) -> None:
    """A size limit cuts the list of people: the sync fails and says why, instead of disabling the rest."""
    with running_directory(tmp_path / "limited", service_size_limit=2) as limited:
        for uid in PASSWORDS:
            limited.add_person(uid, uid.title(), f"{uid}@corp.example", PASSWORDS[uid])
        source_id = await add_source(world, ldap_source(limited, group_base=""))
        for uid in PASSWORDS:
            assert (await _login(world.client, uid, PASSWORDS[uid])).status_code == 200
        synced = (await world.client.post(f"{TOOLS}/{source_id}/sync", headers=await world.as_("admin"))).json()
        assert synced["result"].startswith("failed at search"), synced
        assert synced["disabled"] == 0
        for uid in PASSWORDS:
            assert (await _login(world.client, uid, PASSWORDS[uid])).status_code == 200


async def test_a_filter_the_directory_refuses_is_a_clear_failure(world: World, directory: Directory) -> None:
    """An administrator's malformed filter: the test says where, sign-in is 503 (not 500), nobody is disabled."""
    source_id = await add_source(world, ldap_source(directory, user_filter="(objectClass=inetOrgPerson))"))
    admin = await world.as_("admin")
    tested = (await world.client.post(f"{TOOLS}/{source_id}/test", headers=admin)).json()
    assert tested["status"] == "ERROR"
    assert "search" in tested["details"]
    assert (await _login(world.client, "lena", PASSWORDS["lena"])).status_code == 503
    synced = (await world.client.post(f"{TOOLS}/{source_id}/sync", headers=admin)).json()
    assert synced["result"].startswith("failed at search")
