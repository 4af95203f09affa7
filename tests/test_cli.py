"""The `grantflow` command as an operator runs it: expected refusals are one line and a non-zero exit, never a
traceback; the password rule is the API's; an existing CA is not replaced by accident; every option explains
itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from grantflow.cli import app
from tests.processes import fresh_env

pytestmark = pytest.mark.slow  # each command is a process that migrates its SQLite file first


def grantflow(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grantflow", *args],
        env=fresh_env(data_dir, GRANTFLOW_ADMIN_PASSWORD="admin-password", GRANTFLOW_OAUTH_CLIENT_SECRET="secret"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_refusals_are_one_clear_line(tmp_path: Path) -> None:
    assert grantflow(tmp_path, "role", "create", "ops").returncode == 0
    assert refused(grantflow(tmp_path, "role", "create", "ops")) == "error: a role named 'ops' exists (name)"
    unknown = refused(grantflow(tmp_path, "role", "create", "other", "-p", "make-coffee"))
    assert unknown.startswith("error: unknown permission")
    assert refused(grantflow(tmp_path, "role", "add-member", "ops", "nobody")) == "error: no user 'nobody'"


def test_the_command_line_keeps_the_apis_password_rule(tmp_path: Path) -> None:
    short = refused(grantflow(tmp_path, "user", "create", "alice", "--password-stdin", stdin="s3cret\n"))
    assert "at least 8 characters" in short
    assert "(password.password)" in short
    assert "at least 8 characters" in refused(
        grantflow(tmp_path, "user", "create", "bob", "--password-stdin", stdin="\n")
    )
    made = grantflow(tmp_path, "user", "create", "carol", "--password-stdin", stdin="a-long-enough-password\n")
    assert made.returncode == 0, made.stderr
    again = refused(
        grantflow(tmp_path, "user", "create", "carol", "--password-stdin", stdin="a-long-enough-password\n")
    )
    assert "carol" in again


def test_tls_init_keeps_an_existing_ca_unless_forced(tmp_path: Path) -> None:
    assert grantflow(tmp_path, "tls", "init", "--host", "localhost").returncode == 0
    ca = tmp_path / "tls" / "ca.pem"
    first = ca.read_bytes()
    assert "pass --force to replace it" in refused(grantflow(tmp_path, "tls", "init", "--host", "localhost"))
    assert ca.read_bytes() == first
    assert grantflow(tmp_path, "tls", "init", "--host", "localhost", "--force").returncode == 0
    assert ca.read_bytes() != first


def test_every_option_has_help_and_no_bool_metavar() -> None:
    root = typer.main.get_command(app)  # typer's own click: walked by shape, not by class

    def commands(group: Any, path: str) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                found += commands(command, f"{path} {name}")
            else:
                found.append((f"{path} {name}", command))
        return found

    listed = commands(root, "grantflow")
    assert {"grantflow serve", "grantflow user create", "grantflow tls init"} <= {name for name, _ in listed}
    for name, command in listed:
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert param.help, f"{name} {param.opts[0]} has no help"
        context = command.context_class(command, info_name=name)
        assert "<bool>" not in command.get_help(context), name
