"""End to end over real sockets: the service as `make run` starts it, and the full workflow through it."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from grantflow.config import Config
from grantflow.migrations import runner
from tests.conftest import ADMIN_PASSWORD, CLIENT_SECRET
from tests.factories import TOKEN_URL, WE, bearer
from tests.processes import free_port, fresh_env

CLI = [sys.executable, "-m", "grantflow"]


def _token(http: httpx.Client, username: str, password: str, client_secret: str = CLIENT_SECRET) -> str:
    response = http.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": username, "password": password},
        auth=("privx-external", client_secret),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120, check=False)


def _env(config: Config, data_dir: Path) -> dict[str, str]:
    return fresh_env(data_dir, GRANTFLOW_DATABASE_URL=config.resolved_database_url)


def test_workflow_over_http_with_cli_created_identities(live_server: str, prepared: Config) -> None:
    """Admin (CLI) creates roles and users, admin (API) a two-step workflow; alice asks, bob and carol approve."""
    env = _env(prepared, prepared.data_dir)
    roles = {"linux-admins": _cli(env, "role", "create", "linux-admins").stdout.strip()}
    for role in ("team-leads", "security"):
        roles[role] = _cli(env, "role", "create", role, "-p", "workflows-requests").stdout.strip()
    for name in ("alice", "bob", "carol"):
        created = _cli(
            env,
            "user",
            "create",
            name,
            "--email",
            f"{name}@example.com",
            "--password-stdin",
            stdin=f"{name}-password-1\n",
        )
        assert created.returncode == 0, created.stderr
    assert _cli(env, "role", "add-member", "team-leads", "bob").returncode == 0
    assert _cli(env, "role", "add-member", "security", "carol").returncode == 0

    with httpx.Client(base_url=live_server, timeout=30) as http:
        admin = bearer(_token(http, "admin", ADMIN_PASSWORD))
        body = {
            "name": "linux admins, two steps",
            "grant_types": ["PERMANENT"],
            "target_roles": [{"id": roles["linux-admins"]}],
            "action": "GRANT",
            "steps": [
                {"name": "lead", "match": "ANY", "approvers": [{"role": {"id": roles["team-leads"]}}]},
                {"name": "security", "match": "ALL", "approvers": [{"role": {"id": roles["security"]}}]},
            ],
        }
        created = http.post(f"{WE}/workflows", json=body, headers=admin)
        assert created.status_code == 201, created.text

        alice = bearer(_token(http, "alice", "alice-password-1"))
        requestable = http.get(f"{WE}/workflows/roles", headers=alice).json()
        assert [item["name"] for item in requestable["items"]] == ["linux-admins"]
        request = http.post(
            f"{WE}/requests",
            json={
                "requested_role": {"id": roles["linux-admins"]},
                "grant_type": "PERMANENT",
                "request_justification": "INC-1",
            },
            headers=alice,
        )
        assert request.status_code == 201, request.text
        request_id = request.json()["id"]

        bob = bearer(_token(http, "bob", "bob-password-1"))
        carol = bearer(_token(http, "carol", "carol-password-1"))
        assert http.get(f"{WE}/requests", params={"filter": "active_approvals"}, headers=carol).json()["count"] == 0
        assert (
            http.post(
                f"{WE}/requests/{request_id}/decision", json={"step": 0, "decision": "APPROVED"}, headers=bob
            ).status_code
            == 200
        )
        assert http.get(f"{WE}/requests", params={"filter": "active_approvals"}, headers=carol).json()["count"] == 1
        assert (
            http.post(
                f"{WE}/requests/{request_id}/decision", json={"step": 1, "decision": "APPROVED"}, headers=carol
            ).status_code
            == 200
        )
        assert http.get(f"{WE}/requests/{request_id}", headers=alice).json()["status"] == "APPROVED"

        # The membership shows at alice's next login: the granted role's permissions reach her token.
        scopes = http.post(
            TOKEN_URL,
            data={"grant_type": "password", "username": "alice", "password": "alice-password-1"},
            auth=("privx-external", CLIENT_SECRET),
        ).json()["scope"]
        assert "workflowsRequests" in scopes.split()


@pytest.mark.slow
def test_grantflow_serve_on_a_fresh_data_dir(tmp_path: Path) -> None:
    """What `make run` does: SQLite under the data dir, generated secrets in a 0600 file, never printed."""
    env = fresh_env(tmp_path / "var")
    port = free_port()
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        status = None
        for _ in range(200):
            try:
                status = httpx.get(f"{base}/workflow-engine/api/v1/status", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert status is not None
        assert status.status_code == 200
        assert status.json()["status"] == "RUNNING"

        credentials = tmp_path / "var" / "initial-credentials"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
        values = dict(line.split("=", 1) for line in credentials.read_text().splitlines() if not line.startswith("#"))
        assert (tmp_path / "var" / "grantflow.db").exists()
        with httpx.Client(base_url=base) as http:
            token = _token(http, "admin", values["admin_password"], values["oauth_client_secret"])
            assert http.get(f"{WE}/workflows", headers=bearer(token)).status_code == 200
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "initial-credentials" in output
    for secret in values.values():
        assert secret not in output


def test_start_refuses_a_database_written_by_a_newer_release(prepared: Config) -> None:
    env = _env(prepared, prepared.data_dir)
    code = (
        "import asyncio\n"
        "from sqlalchemy import text\n"
        "from grantflow.config import Config\n"
        "from grantflow.db import create_engine\n"
        "async def main():\n"
        "    engine = create_engine(Config().resolved_database_url)\n"
        "    async with engine.begin() as c:\n"
        "        await c.execute(text(\"UPDATE alembic_version SET version_num = '9999_future'\"))\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    try:
        result = _cli(env, "db", "upgrade")
        assert result.returncode == 2
        assert re.search(r"newer release", result.stderr)
    finally:
        code = code.replace("'9999_future'", repr(runner.head()))
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
