"""The only place where routers meet their prefixes (decisions.md §2)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from grantflow.access_request.router import router as requests_router
from grantflow.audit.router import router as audit_router
from grantflow.engine_settings.router import router as settings_router
from grantflow.errors import ERROR_RESPONSES
from grantflow.grant.router import router as grants_router
from grantflow.identity.router import extension_router as source_tools_router
from grantflow.identity.router import router as sources_router
from grantflow.notification.router import router as outbox_router
from grantflow.notification.router import testsmtp_router
from grantflow.oauth.router import router as auth_router
from grantflow.ops.router import metrics_router, status_router
from grantflow.role.router import router as role_store_router
from grantflow.user.router import router as user_store_router
from grantflow.web.router import STATIC_PATH, static_files
from grantflow.web.router import router as web_router
from grantflow.workflow.router import router as workflows_router

WORKFLOW_ENGINE = "/workflow-engine/api/v1"
AUTH = "/auth/api/v1"
ROLE_STORE = "/role-store/api/v1"
LOCAL_USER_STORE = "/local-user-store/api/v1"
GRANTFLOW = "/grantflow/api/v1"
DOCS_STATIC = "/docs-static"

# Routers in the order FastAPI tries them for each request (every route of a router before the next router's):
# the busiest paths first (the status a monitor polls, one route; the SDKs' requests; tokens), so that they are
# found after a few routes instead of after the hundred the UI and admin endpoints add (each route tried costs
# about a microsecond: jwks 3,834 -> 5,316 req/s). No two routers share a path, so the order decides nothing else.
ROUTES: tuple[tuple[str, APIRouter], ...] = (
    (WORKFLOW_ENGINE, status_router),
    (WORKFLOW_ENGINE, requests_router),
    (AUTH, auth_router),
    (WORKFLOW_ENGINE, workflows_router),
    (WORKFLOW_ENGINE, settings_router),
    (WORKFLOW_ENGINE, testsmtp_router),
    (AUTH, status_router),
    (ROLE_STORE, status_router),
    (ROLE_STORE, role_store_router),
    (ROLE_STORE, sources_router),
    (LOCAL_USER_STORE, status_router),
    (LOCAL_USER_STORE, user_store_router),
    (GRANTFLOW, outbox_router),
    (GRANTFLOW, grants_router),
    (GRANTFLOW, audit_router),
    (GRANTFLOW, source_tools_router),
)


def mount(app: FastAPI) -> None:
    for prefix, router in ROUTES:
        # The OAuth endpoints answer errors in OAuth's own shape (RFC 6749), not the PrivX error body.
        responses = {} if router is auth_router else ERROR_RESPONSES
        app.include_router(router, prefix=prefix, responses=responses)
    app.include_router(metrics_router)
    app.include_router(web_router)
    app.mount(STATIC_PATH, static_files, name="ui-static")
    _mount_api_docs(app)


def _mount_api_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from the pinned swagger-ui-bundle package: nothing comes from the internet."""
    app.mount(DOCS_STATIC, StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def api_docs(_request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="grantflow API",
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon.svg",
        )
