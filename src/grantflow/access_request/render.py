"""Requests as PrivX's request objects: current names of roles and users, the grant's state, what the caller may do."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.access_request import queries
from grantflow.access_request.models import Decision, RequestAction, RequestStatus
from grantflow.access_request.records import RequestRecord
from grantflow.access_request.schemas import AccessRequestOut, ApproverOut, RequestStepOut
from grantflow.auth.principal import Principal
from grantflow.errors import NotFound
from grantflow.grant.models import GrantState
from grantflow.role.handles import Handles


async def read_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, now: datetime
) -> AccessRequestOut:
    """One request as the caller may see it: request, approvers and grant in one query, then the names in one."""
    request = await queries.one_request(session, request_id)
    if request is None or not await queries.visible(session, principal, request, now):
        # Someone else's request is indistinguishable from a missing one.
        raise NotFound("request not found", property="request_id")
    return (await render(session, principal, [request]))[0]


async def render(
    session: AsyncSession, principal: Principal, requests: Sequence[RequestRecord]
) -> list[AccessRequestOut]:
    """PrivX's request objects with the current role and user names (one query for all of them)."""
    handles = Handles()
    for r in requests:
        handles.want_role_ids([r.requested_role_id])
        handles.want_roles(r.snapshot.target_roles)
        handles.want_roles(r.snapshot.requestor_roles)
        handles.want_role_ids(a.role_id for a in r.approvers)
        handles.want_users([r.requester_id, r.target_user_id, r.target_role_revoked_by])
        handles.want_users(a.decider_id for a in r.approvers)
    await handles.load(session)
    return [_render_one(r, principal, handles) for r in requests]


def _render_one(r: RequestRecord, principal: Principal, handles: Handles) -> AccessRequestOut:
    snap, grant = r.snapshot, r.grant
    steps = [
        RequestStepOut(
            id=s.id,
            name=s.name,
            match=s.match,
            approvers=[
                ApproverOut(
                    id=a.id,
                    role=handles.role(a.role_id, a.role_name),
                    decision=Decision(a.decision),
                    user=handles.user(a.decider_id, a.decider_name or "") if a.decider_id else None,
                    decision_time=a.decision_time,
                    comment=a.comment,
                )
                for a in r.step_entries(i)
            ],
        )
        for i, s in enumerate(r.step_snapshots)
    ]
    return AccessRequestOut(
        id=r.id,
        name=r.name,
        workflow=r.workflow_id,
        requester=handles.user(r.requester_id, r.requester_name),
        target_user=handles.user(r.target_user_id, r.target_user_name),
        requested_role=handles.role(r.requested_role_id, r.requested_role_name),
        action=RequestAction(r.action),
        status=RequestStatus(r.status),
        request_justification=r.request_justification,
        comment=r.comment,
        grant_type=r.grant_type,
        grant_start=r.grant_start,
        grant_end=r.grant_end,
        floating_length=r.floating_length,
        requested_grant_type=r.requested_grant_type,
        requested_grant_start=r.requested_grant_start,
        requested_grant_end=r.requested_grant_end,
        requested_floating_length=r.requested_floating_length,
        grant_types=list(snap.grant_types),
        max_active_requests=snap.max_active_requests,
        max_floating_duration=snap.max_floating_duration,
        max_time_restricted_duration=snap.max_time_restricted_duration,
        target_roles=handles.roles(snap.target_roles),
        requestor_roles=handles.roles(snap.requestor_roles),
        can_bypass_revoke_workflow=snap.can_bypass_revoke_workflow,
        steps=steps,
        current_step=r.current_step,
        approver_can_revoke=queries.may_revoke(r, principal),
        target_role_revoked=r.target_role_revoked,
        target_role_revocation_time=r.target_role_revocation_time,
        target_role_revoked_by=handles.user(r.target_role_revoked_by) if r.target_role_revoked_by else None,
        grant_state=GrantState(grant.state) if grant else None,
        grant_started_at=grant.started_at if grant else None,
        grant_ends_at=grant.ends_at if grant else None,
        grant_ended_at=grant.ended_at if grant else None,
        author=r.author,
        created=r.created,
        updated=r.updated,
        updated_by=r.updated_by,
    )
