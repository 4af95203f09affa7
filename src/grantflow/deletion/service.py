"""Deleting a role: refused while a workflow or a waiting request still depends on it.

This sits above the packages whose records refer to roles (workflows, requests), so that `role` itself depends on
none of them.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.access_request import queries as request_queries
from grantflow.errors import ErrorCode, ErrorDetail, InvalidRequestData
from grantflow.role import service as role_service
from grantflow.workflow import service as workflow_service


async def delete_role(session: AsyncSession, role_id: uuid.UUID) -> None:
    """Refused while a workflow or a waiting request still needs the role; decided requests keep its name."""
    await role_service.get_role(session, role_id)
    workflows = [str(w.id) for w in await workflow_service.workflows_using_role(session, role_id)]
    waiting = [str(i) for i in await request_queries.waiting_using_role(session, role_id)]
    if workflows or waiting:
        raise InvalidRequestData(
            "the role is still used: change or delete these workflows and decide these requests first",
            property="role_id",
            details=[_detail(i, "workflow") for i in workflows] + [_detail(i, "request") for i in waiting],
        )
    await role_service.delete_role(session, role_id)


def _detail(entity_id: str, kind: str) -> ErrorDetail:
    return ErrorDetail(error_code=ErrorCode.INVALID_REQUEST_DATA, error_message=entity_id, property=kind)
