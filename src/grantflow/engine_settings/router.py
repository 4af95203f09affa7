"""`/workflow-engine/api/v1/settings` (POST /testsmtp lives with the probe, in notification/router.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from grantflow.db import ReadSessionDep, SessionDep
from grantflow.engine_settings import service
from grantflow.engine_settings.schemas import SettingsIn, SettingsOut
from grantflow.http.deps import WorkflowsManage, WorkflowsView
from grantflow.http.responses import NO_BODY
from grantflow.runtime import RuntimeDep

router = APIRouter(tags=["settings"])


@router.get("/settings", response_model=SettingsOut, summary="Read the engine settings (no password)")
async def get_settings(_: WorkflowsView, session: ReadSessionDep) -> SettingsOut:
    return await service.get_settings(session)


@router.put("/settings", summary="Store engine settings (given keys replace stored ones)", **NO_BODY)
async def put_settings(_: WorkflowsManage, session: SessionDep, runtime: RuntimeDep, body: SettingsIn) -> Response:
    await service.update_settings(session, runtime.secret_box, body, runtime.clock.now())
    return Response(status_code=status.HTTP_200_OK)
