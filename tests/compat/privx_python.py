"""A client that behaves like the PrivX Python SDK (privx_api 43.0.0) on the wire, call for call.

The SDK is not on PyPI, so this reproduces what docs/privx-compatibility.md ("What the SDKs send")
describe: a new HTTPSConnection per call with `ssl.create_default_context(cadata=ca)`, the password grant with
HTTP Basic of the OAuth client, `Content-type: application/json` on every call (GET and DELETE too), re-login once
`expires_in - 3` seconds have passed, and `ok` only when the status equals the one the SDK method expects.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

RE_AUTH_MARGIN = 3


@dataclass
class Response:
    status: int
    expected: int
    data: Any

    @property
    def ok(self) -> bool:
        return self.status == self.expected


class PrivXLike:
    def __init__(
        self,
        host: str,
        port: int,
        ca_cert: str,
        oauth_client_id: str,
        oauth_client_secret: str,
        now: Callable[[], float] = time.time,
    ) -> None:
        """`now` stands in for time.time(), so a test can move the SDK's clock with the server's."""
        self.host, self.port, self.ca_cert, self.now = host, port, ca_cert, now
        self.basic = base64.b64encode(f"{oauth_client_id}:{oauth_client_secret}".encode()).decode()
        self.token = ""
        self.deadline = 0.0
        self.credentials: tuple[str, str] | None = None
        self.logins = 0

    def _connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.host, self.port, context=ssl.create_default_context(cadata=self.ca_cert)
        )

    def authenticate(self, api_client_id: str, api_client_secret: str) -> None:
        self.credentials = (api_client_id, api_client_secret)
        body = urllib.parse.urlencode(
            {"grant_type": "password", "username": api_client_id, "password": api_client_secret}
        )
        connection = self._connection()
        connection.request(
            "POST",
            "/auth/api/v1/oauth/token",
            body=body,
            headers={"Content-type": "application/x-www-form-urlencoded", "Authorization": f"Basic {self.basic}"},
        )
        response = connection.getresponse()
        payload = json.loads(response.read())
        connection.close()
        if response.status != 200 or not payload.get("access_token"):
            raise RuntimeError(f"authentication failed: {response.status} {payload}")
        self.token = payload["access_token"]
        self.deadline = self.now() + payload["expires_in"] - RE_AUTH_MARGIN
        self.logins += 1

    def call(
        self, method: str, path: str, expected: int, body: Any = None, query: dict[str, Any] | None = None
    ) -> Response:
        if self.credentials and self.now() >= self.deadline:
            self.authenticate(*self.credentials)
        if query:
            path = f"{path}?{urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})}"
        connection = self._connection()
        headers = {"Content-type": "application/json", "Authorization": f"Bearer {self.token}"}
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        raw = response.read()
        connection.close()
        try:
            data = json.loads(raw)
        except ValueError:
            data = {}
        if response.status != expected:
            data = {"status": response.status, "details": data}
        return Response(response.status, expected, data)

    def exchange_external_jwt_token(self, body: dict[str, str]) -> Response:
        """privx_api's `exchange_external_jwt_token`: its `_http_post` logs the API client in first."""
        return self.call("POST", "/auth/api/v1/token/login", 200, body=body)
