"""`/workflow-engine/api/v1/workflows`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from grantflow.db import ReadSessionDep, SessionDep
from grantflow.http.deps import AnyUser, WorkflowsManage, WorkflowsView
from grantflow.http.responses import NO_BODY
from grantflow.kit.pagination import Page, page_params
from grantflow.kit.schema import Identifier, ResultSet
from grantflow.runtime import RuntimeDep
from grantflow.workflow import service
from grantflow.workflow.schemas import RequestableRole, WorkflowIn, WorkflowOut

router = APIRouter(prefix="/workflows", tags=["workflows"])

WorkflowPage = Annotated[Page, Depends(page_params(service.SORT_KEYS, "created", default_desc=False))]
# /workflows/roles may be paged up to 1000, as the PrivX MCP client does (decisions.md §4).
RolePage = Annotated[Page, Depends(page_params({"name": None}, "name", default_desc=False, max_limit=1000))]


@router.get("", response_model=ResultSet[WorkflowOut], summary="List workflows")
async def list_workflows(_: WorkflowsView, session: ReadSessionDep, page: WorkflowPage) -> ResultSet[WorkflowOut]:
    count, workflows = await service.list_workflows(session, page)
    return ResultSet(count=count, items=await service.render(session, workflows))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Identifier, summary="Create a workflow")
async def create_workflow(
    principal: WorkflowsManage, session: SessionDep, runtime: RuntimeDep, body: WorkflowIn
) -> Identifier:
    workflow = await service.create_workflow(session, body, principal.user_id, runtime.clock.now())
    return Identifier(id=str(workflow.id))


@router.get("/roles", response_model=ResultSet[RequestableRole], summary="Roles the caller can request")
async def requestable_roles(
    principal: AnyUser, session: ReadSessionDep, runtime: RuntimeDep, page: RolePage
) -> ResultSet[RequestableRole]:
    count, items = await service.requestable_roles(session, principal.user_id, runtime.clock.now(), page)
    return ResultSet(count=count, items=items)


@router.get("/{workflow_id}", response_model=WorkflowOut, summary="Get a workflow")
async def get_workflow(workflow_id: uuid.UUID, _: WorkflowsView, session: ReadSessionDep) -> WorkflowOut:
    workflow = await service.get_workflow(session, workflow_id)
    return (await service.render(session, [workflow]))[0]


@router.put("/{workflow_id}", summary="Replace a workflow (existing requests keep their copy)", **NO_BODY)
async def update_workflow(
    workflow_id: uuid.UUID,
    principal: WorkflowsManage,
    session: SessionDep,
    runtime: RuntimeDep,
    body: WorkflowIn,
) -> Response:
    await service.update_workflow(session, workflow_id, body, principal.user_id, runtime.clock.now())
    return Response(status_code=status.HTTP_200_OK)


@router.delete("/{workflow_id}", summary="Delete a workflow (existing requests keep their copy)", **NO_BODY)
async def delete_workflow(workflow_id: uuid.UUID, _: WorkflowsManage, session: SessionDep) -> Response:
    await service.delete_workflow(session, workflow_id)
    return Response(status_code=status.HTTP_200_OK)
