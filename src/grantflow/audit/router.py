"""`/grantflow/api/v1/audit-events`: every grant transition, for administrators."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from grantflow.audit import service
from grantflow.audit.schemas import AuditEventOut
from grantflow.audit.service import AuditAction, EventFilter
from grantflow.db import ReadSessionDep
from grantflow.http.deps import Admin
from grantflow.kit.pagination import Page, page_params
from grantflow.kit.schema import Moment, ResultSet

router = APIRouter(tags=["audit"])
EventPage = Annotated[Page, Depends(page_params(service.SORT_KEYS, "at", default_desc=True))]


@router.get("/audit-events", response_model=ResultSet[AuditEventOut], summary="List audit events (admin)")
async def list_audit_events(
    _: Admin,
    session: ReadSessionDep,
    page: EventPage,
    action: Annotated[AuditAction | None, Query()] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="whose access changed")] = None,
    role_id: Annotated[uuid.UUID | None, Query()] = None,
    request_id: Annotated[uuid.UUID | None, Query()] = None,
    grant_id: Annotated[uuid.UUID | None, Query()] = None,
    since: Annotated[Moment | None, Query(description="at or after this moment")] = None,
    until: Annotated[Moment | None, Query(description="before this moment")] = None,
    actor_id: Annotated[uuid.UUID | None, Query(description="who made the change (extension filter)")] = None,
) -> ResultSet[AuditEventOut]:
    wanted = EventFilter(action, user_id, role_id, request_id, grant_id, since, until, actor_id)
    count, items = await service.list_events(session, page, wanted)
    return ResultSet(count=count, items=[AuditEventOut.model_validate(e) for e in items])
