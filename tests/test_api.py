"""The app's surface: which routes need no token, and what OpenAPI says about the rest."""

from __future__ import annotations

import httpx

PUBLIC = {
    ("GET", "/workflow-engine/api/v1/status"),
    ("GET", "/auth/api/v1/status"),
    ("GET", "/role-store/api/v1/status"),
    ("GET", "/local-user-store/api/v1/status"),
    ("POST", "/auth/api/v1/oauth/token"),
    ("GET", "/auth/api/v1/oauth/authorize"),
    ("POST", "/auth/api/v1/login"),
    ("POST", "/auth/api/v1/token/login"),  # the token it exchanges is the credential
    ("GET", "/auth/api/v1/jwks"),
}

WORKFLOW_ENGINE_ENDPOINTS = {
    ("GET", "/workflow-engine/api/v1/status"),
    ("GET", "/workflow-engine/api/v1/workflows"),
    ("POST", "/workflow-engine/api/v1/workflows"),
    ("GET", "/workflow-engine/api/v1/workflows/{workflow_id}"),
    ("PUT", "/workflow-engine/api/v1/workflows/{workflow_id}"),
    ("DELETE", "/workflow-engine/api/v1/workflows/{workflow_id}"),
    ("GET", "/workflow-engine/api/v1/workflows/roles"),
    ("GET", "/workflow-engine/api/v1/requests"),
    ("POST", "/workflow-engine/api/v1/requests"),
    ("GET", "/workflow-engine/api/v1/requests/{request_id}"),
    ("DELETE", "/workflow-engine/api/v1/requests/{request_id}"),
    ("POST", "/workflow-engine/api/v1/requests/{request_id}/decision"),
    ("POST", "/workflow-engine/api/v1/requests/{request_id}/role/revoke"),
    ("POST", "/workflow-engine/api/v1/requests/search"),
    ("GET", "/workflow-engine/api/v1/settings"),
    ("PUT", "/workflow-engine/api/v1/settings"),
    ("POST", "/workflow-engine/api/v1/testsmtp"),
}


async def _operations(client: httpx.AsyncClient) -> set[tuple[str, str]]:
    spec = (await client.get("/openapi.json")).json()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


async def test_every_route_but_the_public_ones_needs_a_token(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    open_in_spec = {(m.upper(), p) for p, ops in spec["paths"].items() for m, op in ops.items() if "security" not in op}
    assert open_in_spec == PUBLIC
    placeholder = "00000000-0000-4000-8000-000000000000"
    for method, path in await _operations(client) - PUBLIC:
        url = path
        for name in ("workflow_id", "request_id", "role_id", "user_id", "client_id"):
            url = url.replace("{" + name + "}", placeholder)
        body = [] if (method, url.rsplit("/", 1)[-1]) in (("POST", "resolve"), ("PUT", "roles")) else {}
        response = await client.request(method, url, json=body if method in ("POST", "PUT") else None)
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.json()["error_code"] == "PERMISSION_DENIED"


async def test_all_17_workflow_engine_endpoints_exist(client: httpx.AsyncClient) -> None:
    served = {op for op in await _operations(client) if op[1].startswith("/workflow-engine/")}
    assert served == WORKFLOW_ENGINE_ENDPOINTS


async def test_openapi_documents_scopes_and_the_error_body(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/auth/api/v1/oauth/token"
    assert "workflowsRequestOnBehalf" in scheme["flows"]["password"]["scopes"]
    paths = spec["paths"]
    create = paths["/workflow-engine/api/v1/workflows"]["post"]
    assert create["security"] == [{"OAuth2PasswordBearer": ["admin", "workflowsManage"]}]
    assert "201" in create["responses"]
    for status in ("400", "401", "403", "404", "413", "500"):
        assert create["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    listing = paths["/workflow-engine/api/v1/requests"]["get"]
    assert listing["security"] == [{"OAuth2PasswordBearer": ["admin", "workflowsRequests", "requestsView"]}]
    assert "security" not in paths["/workflow-engine/api/v1/status"]["get"]
