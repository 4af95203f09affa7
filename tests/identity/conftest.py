"""A seeded OpenLDAP directory per test, and the LDAP source grantflow is given for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grantflow.identity import oidc
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
