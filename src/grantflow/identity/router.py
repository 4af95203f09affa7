"""`/role-store/api/v1/sources` (PrivX's shape: the Python SDK lists them) and `/grantflow/api/v1/sources/{id}`
test and sync."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from grantflow.db import ReadSessionDep, SessionDep
from grantflow.http.deps import SourcesManage, SourcesView
from grantflow.http.responses import NO_BODY
from grantflow.identity import directory, service
from grantflow.identity.schemas import SourceIn, SourceOut, SourceTestOut, SyncOut
from grantflow.kit.schema import Identifier, ResultSet
from grantflow.runtime import RuntimeDep

router = APIRouter(tags=["sources"])
extension_router = APIRouter(tags=["sources"])


@router.get("/sources", response_model=ResultSet[SourceOut], summary="List identity sources")
async def list_sources(_: SourcesView, session: ReadSessionDep) -> ResultSet[SourceOut]:
    sources = await service.list_sources(session)
    return ResultSet(count=len(sources), items=[service.render(s) for s in sources])


@router.post("/sources", status_code=status.HTTP_201_CREATED, response_model=Identifier, summary="Add an LDAP source")
async def create_source(
    _: SourcesManage, session: SessionDep, runtime: RuntimeDep, body: SourceIn, response: Response
) -> Identifier:
    source = await service.create_source(session, body, runtime.secret_box)
    response.headers["Location"] = f"/role-store/api/v1/sources/{source.id}"
    return Identifier(id=str(source.id))


@router.get("/sources/{source_id}", response_model=SourceOut, summary="Get an identity source")
async def get_source(source_id: uuid.UUID, _: SourcesView, session: ReadSessionDep) -> SourceOut:
    return service.render(await service.get_source(session, source_id))


@router.put("/sources/{source_id}", summary="Change a source (an empty bind_password keeps the stored one)", **NO_BODY)
async def update_source(
    source_id: uuid.UUID, _: SourcesManage, session: SessionDep, runtime: RuntimeDep, body: SourceIn
) -> Response:
    await service.update_source(session, source_id, body, runtime.secret_box)
    return Response(status_code=status.HTTP_200_OK)


@router.delete("/sources/{source_id}", summary="Delete a source: its users are disabled", **NO_BODY)
async def delete_source(source_id: uuid.UUID, _: SourcesManage, session: SessionDep) -> Response:
    await service.delete_source(session, source_id)
    return Response(status_code=status.HTTP_200_OK)


@extension_router.post(
    "/sources/{source_id}/test", response_model=SourceTestOut, summary="Test a source's connection, stage by stage"
)
async def test_source(
    source_id: uuid.UUID, _: SourcesManage, session: ReadSessionDep, runtime: RuntimeDep
) -> SourceTestOut:
    return await directory.test_source(runtime, await service.get_source(session, source_id))


@extension_router.post("/sources/{source_id}/sync", response_model=SyncOut, summary="Sync a source now")
async def sync_source(source_id: uuid.UUID, _: SourcesManage, session: ReadSessionDep, runtime: RuntimeDep) -> SyncOut:
    await service.get_source(session, source_id)
    return await directory.sync_source(runtime, source_id)
