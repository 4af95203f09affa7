"""A seeded OpenLDAP directory per test, and the LDAP source grantflow is given for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grantflow.identity import oidc
from tests.factories import World
from tests.identity.directory import (
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Directory,
    group_dn,
    person_dn,
    running_directory,
)


@pytest.fixture(autouse=True)
def _fresh_provider_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's provider is new (a port may come round again with another key): nothing cached is carried over."""
    monkeypatch.setattr(oidc, "PROVIDERS", oidc.Providers())


PASSWORDS = {"lena": "lena-directory-pw", "omar": "omar-directory-pw", "petra": "petra-directory-pw"}


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Directory]:
    """lena (an engineer), omar and petra (team leads); `leads` is nested in `approvers`."""
    with running_directory(tmp_path / "slapd") as server:
        for uid, name in (("lena", "Lena Berg"), ("omar", "Omar Haddad"), ("petra", "Petra Novak")):
            server.add_person(uid, name, f"{uid}@corp.example", PASSWORDS[uid])
        server.add_group("engineers", person_dn("lena"))
        server.add_group("leads", person_dn("omar"), person_dn("petra"))
        server.add_group("approvers", group_dn("leads"))
        yield server


def ldap_source(directory: Directory, **connection: Any) -> dict[str, Any]:
    """The source body for this directory over StartTLS, with OpenLDAP's attribute names."""
    return {
        "name": "Corp directory",
        "connection": {
            "type": "LDAP",
            "address": directory.ldap_url,
            "starttls": True,
            "ca_file": str(directory.ca_file),
            "bind_dn": SERVICE_DN,
            "bind_password": SERVICE_PASSWORD,
            "user_base": PEOPLE,
            "user_filter": "(objectClass=inetOrgPerson)",
            "username_attribute": "uid",
            "display_name_attribute": "cn",
            "email_attribute": "mail",
            "group_base": GROUPS,
            "nested_groups": "RECURSIVE",
            **connection,
        },
    }


async def add_source(world: World, body: dict[str, Any]) -> str:
    """Add a source as the administrator; its id."""
    created = await world.client.post("/role-store/api/v1/sources", json=body, headers=await world.as_("admin"))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def map_group(world: World, role: str, source_id: str, group: str) -> None:
    """Give the role to every member of the source's group (PrivX's source rules on the role)."""
    admin = await world.as_("admin")
    url = f"/role-store/api/v1/roles/{world.roles[role].id}"
    current = (await world.client.get(url, headers=admin)).json()
    rules = {"type": "GROUP", "match": "ANY", "rules": [{"type": "RULE", "source": source_id, "search_string": group}]}
    answer = await world.client.put(url, json={**current, "source_rules": rules}, headers=admin)
    assert answer.status_code == 200, answer.text
