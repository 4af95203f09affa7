"""What privx-sdk-go does on the wire for a user login (oauth/tAuthCode) and for errors (restapi/errors.go).

privx-sdk-go can't run here (no Go module proxy for it), so this reproduces it call for call, as
docs/privx-compatibility.md ("What the SDKs send") describes: S256 PKCE with a 32-byte verifier, GET authorize
expecting a redirect and reading only `token` from Location, POST /login comparing `state`, the code exchange and
the refresh with client_id=privx-ui and redirect_uri=/privx/oauth-callback, and the error text Go builds from a
PrivX body.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import urllib.parse
from typing import Any

import httpx

CLIENT_ID = "privx-ui"
REDIRECT_URI = "/privx/oauth-callback"


def pkce_pair() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize(http: httpx.Client, challenge: str, state: str) -> httpx.Response:
    return http.get(
        "/auth/api/v1/oauth/authorize",
        params={
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "state": state,
            "user_agent": "privx-sdk-go",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        headers={"User-Agent": "privx-sdk-go"},
        follow_redirects=False,
    )


def login_token(response: httpx.Response) -> str:
    """Go accepts any status below 400 here and reads only `token` from the Location query."""
    assert response.status_code < 400, response.text
    query = urllib.parse.parse_qs(urllib.parse.urlparse(response.headers["location"]).query)
    return query["token"][0]


def exchange(http: httpx.Client, code: str, verifier: str, redirect_uri: str = REDIRECT_URI) -> httpx.Response:
    return http.post(
        "/auth/api/v1/oauth/token",
        data={
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
        },
    )


def refresh(http: httpx.Client, refresh_token: str) -> httpx.Response:
    return http.post(
        "/auth/api/v1/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
        },
    )


def log_in(http: httpx.Client, username: str, password: str) -> dict[str, Any]:
    """The whole tAuthCode flow; returns the token response."""
    verifier, challenge = pkce_pair()
    state = secrets.token_hex(8)
    token = login_token(authorize(http, challenge, state))
    answer = http.post("/auth/api/v1/login", json={"username": username, "password": password, "token": token})
    body = answer.json()
    if body.get("state") != state:  # Go compares the state before it looks at errors
        raise RuntimeError(f"state mismatch: {answer.status_code} {body}")
    exchanged = exchange(http, body["code"], verifier)
    assert exchanged.status_code == 200, exchanged.text
    result: dict[str, Any] = exchanged.json()
    return result


def go_error_text(response: httpx.Response) -> str:
    """restapi/errors.go: `error: CODE, message: M, property: P` and one `, {error: …}` per detail."""
    if not response.content:
        return f"HTTP error: {response.status_code}"
    try:
        body = response.json()
    except ValueError as exc:
        return f"HTTP error: {response.status_code} (unexpected response body: {exc})"

    def part(item: dict[str, Any]) -> str:
        text = f"error: {item.get('error_code', '')}"  # Go leaves a missing field empty
        if item.get("error_message"):
            text += f", message: {item['error_message']}"
        if item.get("property"):
            text += f", property: {item['property']}"
        return text

    return part(body) + "".join(f", {{{part(d)}}}" for d in body.get("details") or [])


# What json.Marshal makes of the Go SDK's structs built from scratch (api/workflow/model.go, v2.44): no
# `omitempty` on WorkflowSettings, so every field is sent, unset strings as "", numbers 0, bools false.
ZERO_WORKFLOW_SETTINGS: dict[str, Any] = {
    "smtp_server": "",
    "smtp_server_port": 0,
    "request_role_max_approvers": 0,
    "smtp_server_enabled": False,
    "privx_backend_address": "",
    "smtp_server_username": "",
    "smtp_server_password": "",
    "smtp_server_protocol": "",
    "smtp_sender_address": "",
    "smtp_retry_attempts": 0,
    "smtp_server_insecure_verify": False,
    "smtp_provider": "",
    "smtp_authentication_mode": "",
    "smtp_provider_token_endpoint": "",
    "smtp_provider_token_scope": "",
}


def go_role(**fields: Any) -> dict[str, Any]:
    """json.Marshal(rolestore.Role{...}): the fields without omitempty are always there, at their zero values."""
    zero: dict[str, Any] = {
        "id": "",
        "explicit": False,
        "implicit": False,
        "system": False,
        "permissions": None,
        "access_group_id": "",
        "owner_src": "",
        "source_rules": {"rules": None},
        "context": {"enabled": False, "validity": None},
    }
    return {**zero, **fields}


# The bookkeeping fields Workflow and AccessRequest marshal without omitempty.
_GO_RECORD: dict[str, Any] = {"id": "", "author": "", "created": "", "updated": "", "updated_by": "", "name": ""}


def go_workflow(**fields: Any) -> dict[str, Any]:
    """json.Marshal(workflow.Workflow{...})."""
    zero = {
        **_GO_RECORD,
        "max_active_requests": 0,
        "can_bypass_revoke_workflow": False,
        "requires_justification": False,
    }
    return {**zero, **fields}


def go_access_request(**fields: Any) -> dict[str, Any]:
    """json.Marshal(workflow.AccessRequest{...})."""
    zero = {**_GO_RECORD, "request_justification": "", "approver_can_revoke": False, "target_role_revoked": False}
    return {**zero, **fields}
