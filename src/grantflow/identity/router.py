"""`/role-store/api/v1/sources` (PrivX's shape: the Python SDK lists them) and `/grantflow/api/v1/sources/{id}`
test and sync."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Response, status

from grantflow.db import ReadSessionDep, SessionDep
from grantflow.errors import InvalidRequestData
from grantflow.http.deps import SourcesManage, SourcesView
from grantflow.http.responses import NO_BODY
from grantflow.identity import directory, ldap, oidc, service
from grantflow.identity.models import SourceKind
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
    source = await service.get_source(session, source_id)
    if source.kind == SourceKind.OIDC:
        details, problem = await oidc.test_provider(*service.oidc_connection_of(source, runtime.secret_box))
        return SourceTestOut(status="ERROR" if problem else "OK", details=details, hint=problem)
    if source.kind != SourceKind.LDAP:
        return SourceTestOut(status="OK", details={"source": "the local user store needs no connection"})
    settings, bind_password = service.ldap_connection_of(source, runtime.secret_box)
    details, failed = await asyncio.to_thread(ldap.test_connection, settings, bind_password)
    if failed is None:
        return SourceTestOut(status="OK", details=details)
    return SourceTestOut(status="ERROR", details=details, hint=failed.hint)


@extension_router.post("/sources/{source_id}/sync", response_model=SyncOut, summary="Sync a source now")
async def sync_source(source_id: uuid.UUID, _: SourcesManage, session: ReadSessionDep, runtime: RuntimeDep) -> SyncOut:
    if (await service.get_source(session, source_id)).kind != SourceKind.LDAP:
        raise InvalidRequestData(
            "only LDAP sources are synced; other users are updated each time they sign in", property="source_id"
        )
    return await directory.sync_source(runtime, source_id)
