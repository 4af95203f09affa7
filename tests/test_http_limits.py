"""The server `grantflow serve` runs refuses request heads that are too large and times out requests sent too
slowly, so no stranger can hold its memory or its connections (raw sockets: httpx would not send such requests)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from grantflow.config import Config
from tests.conftest import serve_process

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("template_database", ["sqlite"], indirect=True)]
STATUS = "/workflow-engine/api/v1/status"
LIMITS = {
    "GRANTFLOW_HTTP_MAX_HEADER_BYTES": "8192",
    "GRANTFLOW_HTTP_MAX_HEADERS": "50",
    "GRANTFLOW_HTTP_HEADER_TIMEOUT_SECONDS": "1",
    "GRANTFLOW_HTTP_BODY_TIMEOUT_SECONDS": "1",
}


@pytest.fixture
def server(prepared: Config) -> Iterator[str]:
    with serve_process(prepared, **LIMITS) as base:
        yield base


def _connect(base: str) -> socket.socket:
    address = urlsplit(base)
    return socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), timeout=30)


def _send(connection: socket.socket, data: bytes) -> None:
    """Send what the server takes; it may close the connection before all of it is read."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        connection.sendall(data)


def _answer(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_request_heads_over_the_limits_are_431_and_the_server_stays_well(server: str) -> None:
    with _connect(server) as huge:
        _send(huge, f"GET {STATUS} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ".encode() + b"a" * (4 << 20))
        assert _answer(huge).startswith(b"HTTP/1.1 431 ")
    many = "".join(f"X-Field-{i}: {i}\r\n" for i in range(60))
    with _connect(server) as crowded:
        _send(crowded, f"GET {STATUS} HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
        assert _answer(crowded).startswith(b"HTTP/1.1 431 ")
    assert httpx.get(server + STATUS).status_code == 200


def test_a_body_sent_with_its_head_is_not_counted_as_head(server: str) -> None:
    body = b"grant_type=password&username=admin&password=" + b"x" * 100_000
    head = f"POST /auth/api/v1/oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    head += "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n"
    with _connect(server) as connection:
        _send(connection, head.encode() + body)  # one write: head and body arrive in the same reads
        assert _answer(connection).startswith(b"HTTP/1.1 401 ")  # the app answered: no client authentication
    with httpx.Client(base_url=server) as keep_alive:  # one connection, several requests: each head counts alone
        assert [keep_alive.get(STATUS, headers={"X-Pad": "p" * 3000}).status_code for _ in range(5)] == [200] * 5


def test_slow_and_idle_connections_are_closed(server: str) -> None:
    with _connect(server) as idle:
        assert _answer(idle) == b""  # nothing was asked: closed without an answer
    with _connect(server) as slow_head:
        _send(slow_head, f"GET {STATUS} HTTP/1.1\r\nHost: x\r\n".encode())  # the blank line never comes
        assert _answer(slow_head).startswith(b"HTTP/1.1 408 ")
    with _connect(server) as slow_body:
        head = b"POST /auth/api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        _send(slow_body, head + b"Content-Length: 100\r\n\r\n{")  # the app waits for the rest of the body
        assert _answer(slow_body).startswith(b"HTTP/1.1 408 ")
    assert httpx.get(server + STATUS).status_code == 200
