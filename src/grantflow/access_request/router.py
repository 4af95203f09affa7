"""`/workflow-engine/api/v1/requests`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from grantflow.access_request import commands, queries, render
from grantflow.access_request.schemas import AccessRequestIn, AccessRequestOut, DecisionIn, SearchIn
from grantflow.db import ReadSessionDep, SessionDep
from grantflow.http.deps import RequestsCreate, RequestsRead, RequestsWrite
from grantflow.http.responses import NO_BODY
from grantflow.kit.pagination import Page, page_params
from grantflow.kit.schema import Identifier, ResultSet
from grantflow.runtime import RuntimeDep

router = APIRouter(prefix="/requests", tags=["requests"])

RequestPage = Annotated[Page, Depends(page_params(queries.SORT_KEYS, "created", default_desc=True))]
FILTER_HELP = "requests | active_requests | approvals | active_approvals | all (any case)"


@router.get("", response_model=ResultSet[AccessRequestOut], summary="The caller's request queue")
async def list_requests(
    principal: RequestsRead,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    page: RequestPage,
    filter: Annotated[str, Query(description=FILTER_HELP)],
) -> ResultSet[AccessRequestOut]:
    request_filter = queries.parse_filter(filter)
    count, items = await queries.list_requests(session, principal, request_filter, page, runtime.clock.now())
    return ResultSet(count=count, items=await render.render(session, principal, items))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Identifier, summary="Request a role")
async def create_request(
    principal: RequestsCreate, session: SessionDep, runtime: RuntimeDep, body: AccessRequestIn
) -> Identifier:
    request = await commands.create_request(session, principal, body, runtime.clock.now())
    return Identifier(id=str(request.id))


@router.post("/search", response_model=ResultSet[AccessRequestOut], summary="Search requests")
async def search_requests(
    principal: RequestsRead,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    page: RequestPage,
    body: SearchIn | None = None,
    filter: Annotated[str | None, Query(description=FILTER_HELP)] = None,
) -> ResultSet[AccessRequestOut]:
    search = body or SearchIn()
    request_filter = queries.parse_filter(filter or search.filter)
    count, items = await queries.list_requests(session, principal, request_filter, page, runtime.clock.now(), search)
    return ResultSet(count=count, items=await render.render(session, principal, items))


@router.get("/{request_id}", response_model=AccessRequestOut, summary="Get a request")
async def get_request(
    request_id: uuid.UUID, principal: RequestsRead, session: ReadSessionDep, runtime: RuntimeDep
) -> AccessRequestOut:
    return await render.read_request(session, principal, request_id, runtime.clock.now())


@router.delete("/{request_id}", summary="Cancel (requester) or delete (admin) a request", **NO_BODY)
async def delete_request(
    request_id: uuid.UUID, principal: RequestsWrite, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await commands.delete_request(session, principal, request_id, runtime.clock.now())
    return Response(status_code=status.HTTP_200_OK)


@router.post("/{request_id}/decision", summary="Approve or deny the current step", **NO_BODY)
async def decide(
    request_id: uuid.UUID,
    principal: RequestsWrite,
    session: SessionDep,
    runtime: RuntimeDep,
    body: DecisionIn,
) -> Response:
    await commands.decide(session, principal, request_id, body, runtime.clock.now())
    return Response(status_code=status.HTTP_200_OK)


@router.post("/{request_id}/role/revoke", summary="Revoke the role an approved request granted", **NO_BODY)
async def revoke_role(
    request_id: uuid.UUID, principal: RequestsWrite, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await commands.revoke_role(session, principal, request_id, runtime.clock.now())
    return Response(status_code=status.HTTP_200_OK)
