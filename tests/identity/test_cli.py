"""`grantflow source` as an operator runs it, against a real slapd: add (the secret from stdin), test, sync, list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.identity.conftest import ldap_source
from tests.identity.directory import SERVICE_PASSWORD, Directory
from tests.test_cli import grantflow, refused

pytestmark = pytest.mark.slow  # each command is a process on its own SQLite file


def test_an_operator_adds_tests_and_syncs_a_directory(tmp_path: Path, directory: Directory) -> None:
    body = ldap_source(directory)
    body["connection"].pop("bind_password")
    spec = tmp_path / "source.json"
    spec.write_text(json.dumps(body))
    data = tmp_path / "data"
    added = grantflow(data, "source", "add", str(spec), "--secret-stdin", stdin=f"{SERVICE_PASSWORD}\n")
    assert added.returncode == 0, added.stderr
    tested = grantflow(data, "source", "test", "Corp directory")
    assert tested.returncode == 0, tested.stderr
    assert "bind: ok" in tested.stdout
    assert SERVICE_PASSWORD not in tested.stdout + tested.stderr
    synced = grantflow(data, "source", "sync", "Corp directory")
    assert synced.stdout.strip() == "ok: 3 users, 0 disabled", synced.stderr
    listed = grantflow(data, "source", "list").stdout
    assert "Local users" in listed
    assert "ok: 3 users" in listed
    assert refused(grantflow(data, "source", "sync", "Local users")).startswith("error: Local users is not an LDAP")
    assert refused(grantflow(data, "source", "test", "nowhere")) == "error: no source 'nowhere'"
