"""The administrator's sign-in sources page, against a real slapd: add, test, sync and delete a directory."""

from __future__ import annotations

import re

from tests.factories import World
from tests.identity.conftest import PASSWORDS
from tests.identity.directory import GROUPS, PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Directory
from tests.web.test_security import Browser, browse

__all__ = ["browse"]


def _form(directory: Directory, token: str, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "type": "LDAP",
        "name": "Corp directory",
        "address": directory.ldap_url,
        "starttls": "on",
        "ca_file": str(directory.ca_file),
        "bind_dn": SERVICE_DN,
        "secret": SERVICE_PASSWORD,
        "user_base": PEOPLE,
        "user_filter": "(objectClass=inetOrgPerson)",
        "username_attribute": "uid",
        "display_name_attribute": "cn",
        "group_base": GROUPS,
        "nested_groups": "RECURSIVE",
        **fields,
    }


async def test_an_administrator_adds_tests_syncs_and_deletes_a_directory(
    world: World, directory: Directory, browse: type[Browser]
) -> None:
    admin = browse()
    await admin.sign_in("admin")
    token = await admin.csrf_token("/admin/sources")
    bad = await admin.post("/admin/sources", _form(directory, token, address="ftp://dc1"))
    assert bad.status_code == 400, bad.text[-600:]
    assert 'id="connection-address-error"' in bad.text
    assert SERVICE_PASSWORD not in bad.text
    added = await admin.post("/admin/sources", _form(directory, token))
    assert added.status_code == 303
    listed = (await admin.http.get("/admin/sources")).text
    source_id = re.search(r'action="/admin/sources/([0-9a-f-]+)/test"', listed)
    assert source_id
    tested = await admin.post(f"/admin/sources/{source_id.group(1)}/test", {"csrf_token": token})
    assert "it works" in tested.text
    assert SERVICE_PASSWORD not in tested.text
    synced = await admin.post(f"/admin/sources/{source_id.group(1)}/sync", {"csrf_token": token})
    assert synced.status_code == 303
    assert "ok: 3 users, 0 disabled" in (await admin.http.get(synced.headers["location"])).text
    assert (await browse().sign_in("lena", PASSWORDS["lena"])).headers["location"] == "/"
    deleted = await admin.post(f"/admin/sources/{source_id.group(1)}/delete", {"csrf_token": token})
    assert deleted.status_code == 303
    assert (await browse().sign_in("lena", PASSWORDS["lena"])).status_code == 400  # disabled with the source


async def test_the_sources_page_needs_the_sources_permissions(world: World, browse: type[Browser]) -> None:
    alice = browse()
    await alice.sign_in("alice")
    assert (await alice.http.get("/admin/sources")).status_code == 403
    token = await alice.csrf_token()
    assert (await alice.post("/admin/sources", {"csrf_token": token, "type": "LDAP", "name": "x"})).status_code == 403
