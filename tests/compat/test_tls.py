"""HTTPS as the PrivX Python SDK speaks it: a given CA, hostname checked, a new TLS connection per call."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import free_port, fresh_env

CLI = [sys.executable, "-m", "grantflow"]


def _sdk_get(host: str, port: int, ca_pem: str, path: str) -> tuple[int, dict[str, object]]:
    """privx_api.base: http.client.HTTPSConnection(host, port, context=ssl.create_default_context(cadata=ca))."""
    connection = http.client.HTTPSConnection(host, port, context=ssl.create_default_context(cadata=ca_pem), timeout=10)
    try:
        connection.request("GET", path, headers={"Content-type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


@pytest.mark.slow
def test_tls_init_and_serve_over_https(tmp_path: Path) -> None:
    env = fresh_env(tmp_path / "var")
    made = subprocess.run(
        [*CLI, "tls", "init", "--host", "localhost", "--host", "grantflow.test"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    tls = tmp_path / "var" / "tls"
    assert str(tls / "ca.pem") in made.stdout
    assert oct((tls / "server.key").stat().st_mode & 0o777) == "0o600"
    port = free_port()
    server = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--port",
            str(port),
            "--tls-cert",
            str(tls / "server.pem"),
            "--tls-key",
            str(tls / "server.key"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ca_pem = (tls / "ca.pem").read_text()
    try:
        status = None
        for _ in range(200):
            try:
                status = _sdk_get("localhost", port, ca_pem, "/workflow-engine/api/v1/status")
                break
            except (ConnectionRefusedError, ssl.SSLError, OSError):
                time.sleep(0.1)
        assert status is not None
        assert status[0] == 200
        assert status[1]["status"] == "RUNNING"
        # The same server reached by a name the certificate does not carry fails verification, as for the SDK.
        with pytest.raises(ssl.SSLCertVerificationError, match=r"match|mismatch"):
            _sdk_get("127.0.0.1", port, ca_pem, "/workflow-engine/api/v1/status")
        # Another CA is not trusted.
        other = tmp_path / "other"
        subprocess.run(
            [*CLI, "tls", "init", "--host", "localhost", "--directory", str(other)],
            env=env,
            capture_output=True,
            check=True,
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            _sdk_get("localhost", port, (other / "ca.pem").read_text(), "/workflow-engine/api/v1/status")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_ip_hosts_become_ip_subject_names(tmp_path: Path) -> None:
    import ipaddress
    from datetime import UTC, datetime

    from cryptography import x509

    from grantflow.tls import init_tls

    files = init_tls(tmp_path, ["127.0.0.1", "grantflow.example"], datetime.now(UTC))
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["grantflow.example"]
