"""`/grantflow/api/v1/grants`: who holds which role through which request, and until when."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from grantflow.db import ReadSessionDep, SessionDep
from grantflow.grant import service
from grantflow.grant.models import GrantState
from grantflow.grant.schemas import GrantOut
from grantflow.http.deps import AnyUser, GrantsView
from grantflow.kit.pagination import Page, page_params
from grantflow.kit.schema import ResultSet
from grantflow.runtime import RuntimeDep

router = APIRouter(tags=["grants"])
GrantPage = Annotated[Page, Depends(page_params(service.SORT_KEYS, "created", default_desc=True))]


@router.get("/grants", response_model=ResultSet[GrantOut], summary="List grants (admin or requestsView)")
async def list_grants(
    _: GrantsView,
    session: ReadSessionDep,
    page: GrantPage,
    user_id: Annotated[uuid.UUID | None, Query(description="only this user's grants")] = None,
    role_id: Annotated[uuid.UUID | None, Query(description="only grants of this role")] = None,
    state: Annotated[GrantState | None, Query(description="only grants in this state")] = None,
) -> ResultSet[GrantOut]:
    wanted = service.GrantFilter(user_id=user_id, role_id=role_id, state=state)
    count, items = await service.list_grants(session, page, wanted)
    return ResultSet(count=count, items=[GrantOut.model_validate(g) for g in items])


@router.post("/grants/{grant_id}/activate", response_model=GrantOut, summary="Start your own floating grant now")
async def activate_grant(principal: AnyUser, session: SessionDep, runtime: RuntimeDep, grant_id: uuid.UUID) -> GrantOut:
    grant = await service.activate(session, grant_id, principal.user_id, runtime.clock.now())
    return GrantOut.model_validate(grant)
