"""The web UI: every page router, and the static files the pages use (our own CSS and JavaScript)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from grantflow.web import admin, approver, external, requester, signin, sources

router = APIRouter(include_in_schema=False)
for pages in (signin.router, external.router, requester.router, approver.router, admin.router, sources.router):
    router.include_router(pages)

STATIC_PATH = "/ui/static"
static_files = StaticFiles(packages=[("grantflow.web", "static")])
