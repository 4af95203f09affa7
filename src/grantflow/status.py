"""ServiceStatus (privx-workflow-engine-api.md §4.12), public as PrivX's status endpoints are."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from sqlalchemy import text

from grantflow import __version__
from grantflow.db import ReadSessionDep
from grantflow.errors import DatabaseUnavailable
from grantflow.kit.schema import OutputModel
from grantflow.runtime import RuntimeDep

router = APIRouter(tags=["status"])


class StatusDetail(OutputModel):
    k: str
    v: str


class ServiceStatus(OutputModel):
    version: str
    api_version: str
    status: str
    status_message: str
    app_id: str
    start_time: datetime
    status_details: list[StatusDetail]
    issues: list[dict[str, str]]


@router.get("/status", response_model=ServiceStatus, summary="Service status (no token needed)")
async def service_status(session: ReadSessionDep, runtime: RuntimeDep) -> ServiceStatus:
    try:
        await session.execute(text("SELECT 1"))
    except Exception as exc:
        raise DatabaseUnavailable("the database does not answer") from exc
    return ServiceStatus(
        version=f"{__version__} (grantflow)",
        api_version="v1",
        status="RUNNING",
        status_message="OK",
        app_id=runtime.app_id,
        start_time=runtime.started,
        status_details=[StatusDetail(k="database", v=session.get_bind().dialect.name)],
        issues=[],
    )
