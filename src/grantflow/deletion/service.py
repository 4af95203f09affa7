"""Deleting a role or a user, and ending what depends on it in the same transaction.

A role is refused while a workflow names it (the administrator must change the workflow: that is configuration).
Everything else that needs the role or the user ends with it, audited: open grants (active, scheduled and armed
floating ones) are revoked and waiting requests that can no longer be granted or decided are cancelled. Nothing is
left behind that would fail later, at a sign-in or an approval, with a conflict no retry could resolve.

This sits above the packages whose records refer to roles and users (workflows, requests, grants), so that
`role` and `user` themselves depend on none of them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.access_request import commands as request_commands
from grantflow.access_request import queries as request_queries
from grantflow.audit.service import Actor
from grantflow.auth.principal import Principal
from grantflow.errors import ErrorCode, ErrorDetail, InvalidRequestData
from grantflow.grant import service as grant_service
from grantflow.role import service as role_service
from grantflow.user import service as user_service
from grantflow.user.models import SourceType
from grantflow.workflow import service as workflow_service


async def delete_role(session: AsyncSession, role_id: uuid.UUID, principal: Principal, now: datetime) -> None:
    """Refused while a workflow names the role; its grants end and the requests that need it are cancelled."""
    role = await role_service.get_role(session, role_id)
    workflows = [str(w.id) for w in await workflow_service.workflows_using_role(session, role_id)]
    if workflows:
        raise InvalidRequestData(
            "the role is still used: change or delete these workflows first",
            property="role_id",
            details=[_detail(i, "workflow") for i in workflows],
        )
    actor = await _actor(session, principal)
    reason = f"the role {role.name} was deleted"
    waiting = await request_queries.waiting_using_role(session, role_id)
    await request_commands.cancel_waiting(session, waiting, now, actor, reason)
    await grant_service.end_all(session, grant_service.GrantFilter(role_id=role_id), now, actor, reason)
    await role_service.delete_role(session, role_id)


async def delete_user(
    session: AsyncSession, user_id: uuid.UUID, source_type: SourceType, principal: Principal, now: datetime
) -> None:
    """The user's grants end and the requests for them are cancelled; decided requests keep their name."""
    user = await user_service.get_of_kind(session, user_id, source_type)
    actor = await _actor(session, principal)
    reason = f"the user {user.shown_name} was deleted"
    waiting = await request_queries.waiting_for_user(session, user_id)
    await request_commands.cancel_waiting(session, waiting, now, actor, reason)
    await grant_service.end_all(session, grant_service.GrantFilter(user_id=user_id), now, actor, reason)
    await user_service.delete_user(session, user_id, source_type)


async def _actor(session: AsyncSession, principal: Principal) -> Actor:
    deleter = await user_service.get_user(session, principal.user_id, property="user")
    return Actor(deleter.id, deleter.shown_name)


def _detail(entity_id: str, kind: str) -> ErrorDetail:
    return ErrorDetail(error_code=ErrorCode.INVALID_REQUEST_DATA, error_message=entity_id, property=kind)
