"""The OpenAPI document says what the server does: schemathesis (its command line, against `grantflow serve`) sends
every operation generated requests with an administrator's token, and checks that no answer is a 5xx, that every
status code and Content-Type is documented, and that every body matches its schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, CLIENT_SECRET

pytestmark = pytest.mark.slow  # a server process and a few hundred generated requests
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def test_every_operation_answers_as_its_document_says(served: str, tmp_path: Path) -> None:
    token = httpx.post(
        f"{served}/auth/api/v1/oauth/token",
        data={"grant_type": "password", "username": "admin", "password": ADMIN_PASSWORD},
        auth=("privx-external", CLIENT_SECRET),
    ).json()["access_token"]
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [
            str(st),
            "run",
            f"{served}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "8",
            "--seed",
            "1",
            "--phases",
            "examples,fuzzing",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:]
