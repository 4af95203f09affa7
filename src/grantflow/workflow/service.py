"""Workflow templates: validate, store, find the ones a request may use."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from grantflow.errors import ErrorCode, InvalidRequestData, NotFound
from grantflow.kit.pagination import Page, paginate
from grantflow.kit.schema import RoleRef
from grantflow.role import service as role_service
from grantflow.role.handles import Handles
from grantflow.role.models import stored_ref
from grantflow.workflow.models import StepMatch, StoredStep, Workflow, WorkflowAction, WorkflowTargetRole
from grantflow.workflow.schemas import ApproverOut, RequestableRole, StepIn, StepOut, WorkflowIn, WorkflowOut

SORT_KEYS = {
    "created": Workflow.created,
    "updated": Workflow.updated,
    "name": Workflow.name,
    "id": Workflow.id,
}


async def get_workflow(session: AsyncSession, workflow_id: uuid.UUID) -> Workflow:
    workflow = await session.get(Workflow, workflow_id, options=[selectinload(Workflow.target_links)])
    if workflow is None:
        raise NotFound("workflow not found", property="workflow_id")
    return workflow


async def list_workflows(session: AsyncSession, page: Page) -> tuple[int, list[Workflow]]:
    return await paginate(session, select(Workflow), page, SORT_KEYS, Workflow.id)


async def create_workflow(session: AsyncSession, body: WorkflowIn, author: uuid.UUID, now: datetime) -> Workflow:
    workflow = Workflow(id=uuid.uuid4(), author=author, created=now, target_links=[])
    await _apply(session, workflow, body, author, now)
    session.add(workflow)
    await session.flush()
    return workflow


async def update_workflow(
    session: AsyncSession, workflow_id: uuid.UUID, body: WorkflowIn, editor: uuid.UUID, now: datetime
) -> Workflow:
    """Full replace. Requests filed earlier keep their own snapshot and are not affected."""
    workflow = await get_workflow(session, workflow_id)
    await _apply(session, workflow, body, editor, now)
    await session.flush()
    return workflow


async def delete_workflow(session: AsyncSession, workflow_id: uuid.UUID) -> None:
    await session.delete(await get_workflow(session, workflow_id))
    await session.flush()


async def _apply(session: AsyncSession, workflow: Workflow, body: WorkflowIn, editor: uuid.UUID, now: datetime) -> None:
    names = await _role_names(session, body)
    if body.action != WorkflowAction.REMOVE and not body.grant_types:
        raise InvalidRequestData(
            "a workflow that grants needs at least one grant type",
            property="grant_types",
            error_code=ErrorCode.REQUIRED_VALUE_MISSING,
        )
    workflow.name = body.name
    workflow.comment = body.comment
    workflow.action = body.action
    workflow.grant_types = sorted(set(body.grant_types))
    workflow.max_time_restricted_duration = body.max_time_restricted_duration
    workflow.max_floating_duration = body.max_floating_duration
    workflow.max_active_requests = body.max_active_requests or 1
    workflow.can_bypass_revoke_workflow = body.can_bypass_revoke_workflow
    workflow.requires_justification = body.requires_justification
    target_ids = _unique_ids(body.target_roles, "target_roles")
    workflow.target_roles = [stored_ref(i, names[i]) for i in target_ids]
    workflow.requester_roles = [stored_ref(i, names[i]) for i in _unique_ids(body.requester_roles, "requester_roles")]
    workflow.steps = [_step(index, step, names) for index, step in enumerate(body.steps)]
    workflow.target_links = [WorkflowTargetRole(role_id=i) for i in target_ids]
    workflow.updated = now
    workflow.updated_by = editor


def _step(index: int, step: StepIn, names: dict[uuid.UUID, str]) -> StoredStep:
    if step.match != StepMatch.AUTO and not step.approvers:
        raise InvalidRequestData(
            "a step needs at least one approver role",
            property=f"steps.{index}.approvers",
            error_code=ErrorCode.REQUIRED_VALUE_MISSING,
        )
    role_ids = _unique_ids([a.role for a in step.approvers], f"steps.{index}.approvers")
    return {
        "id": str(uuid.uuid4()),
        "name": step.name,
        "match": str(step.match),
        "approvers": [{"id": str(uuid.uuid4()), "role": stored_ref(i, names[i])} for i in role_ids],
    }


def _unique_ids(refs: Iterable[RoleRef], property: str) -> list[uuid.UUID]:
    ids = [r.id for r in refs]
    if len(set(ids)) != len(ids):
        raise InvalidRequestData(
            "the same role is listed twice", property=property, error_code=ErrorCode.VALUE_DUPLICATE
        )
    return ids


async def _role_names(session: AsyncSession, body: WorkflowIn) -> dict[uuid.UUID, str]:
    """Current names of every role the body names; an unknown role is a 400 naming where it was."""
    places: list[tuple[str, uuid.UUID]] = [(f"target_roles.{i}.id", r.id) for i, r in enumerate(body.target_roles)]
    places += [(f"requester_roles.{i}.id", r.id) for i, r in enumerate(body.requester_roles)]
    for s, step in enumerate(body.steps):
        places += [(f"steps.{s}.approvers.{a}.role.id", ap.role.id) for a, ap in enumerate(step.approvers)]
    roles = await role_service.roles_by_id(session, (role_id for _, role_id in places))
    for property, role_id in places:
        if role_id not in roles:
            raise InvalidRequestData(f"role {role_id} does not exist", property=property)
    return {i: r.name for i, r in roles.items()}


async def render(session: AsyncSession, workflows: list[Workflow]) -> list[WorkflowOut]:
    """PrivX shape with current role names; roles deleted since show `deleted: true`."""
    handles = Handles()
    for w in workflows:
        handles.want_roles(w.target_roles)
        handles.want_roles(w.requester_roles)
        for step in w.steps:
            handles.want_roles(a["role"] for a in step["approvers"])
    await handles.load(session)
    return [
        WorkflowOut(
            id=w.id,
            name=w.name,
            comment=w.comment,
            action=WorkflowAction(w.action),
            grant_types=w.grant_types,
            max_time_restricted_duration=w.max_time_restricted_duration,
            max_floating_duration=w.max_floating_duration,
            max_active_requests=w.max_active_requests,
            can_bypass_revoke_workflow=w.can_bypass_revoke_workflow,
            requires_justification=w.requires_justification,
            target_roles=handles.roles(w.target_roles),
            requester_roles=handles.roles(w.requester_roles),
            steps=[
                StepOut(
                    id=step["id"],
                    name=step["name"],
                    match=step["match"],
                    approvers=[ApproverOut(id=a["id"], role=handles.role_ref(a["role"])) for a in step["approvers"]],
                )
                for step in w.steps
            ],
            author=w.author,
            created=w.created,
            updated=w.updated,
            updated_by=w.updated_by,
        )
        for w in workflows
    ]


def usable_by(workflow: Workflow, held_role_ids: set[uuid.UUID]) -> bool:
    """A workflow without requester roles is open to every user; otherwise one of them is needed."""
    allowed = {uuid.UUID(r["id"]) for r in workflow.requester_roles}
    return not allowed or bool(allowed & held_role_ids)


def covers(workflow: Workflow, action: str) -> bool:
    return workflow.action in (WorkflowAction.BOTH, action)


async def workflows_for_role(session: AsyncSession, role_id: uuid.UUID) -> list[Workflow]:
    query = (
        select(Workflow)
        .join(WorkflowTargetRole, WorkflowTargetRole.workflow_id == Workflow.id)
        .where(WorkflowTargetRole.role_id == role_id)
        .order_by(Workflow.created)
    )
    return list(await session.scalars(query))


async def requestable_roles(
    session: AsyncSession, user_id: uuid.UUID, now: datetime, page: Page
) -> tuple[int, list[RequestableRole]]:
    """Roles the caller may request through some workflow, aggregated per role (§3.7)."""
    held = {r.id for r in await role_service.effective_roles(session, user_id, now)}
    aggregated: dict[uuid.UUID, dict[str, Any]] = {}
    for workflow in await session.scalars(select(Workflow).order_by(Workflow.created)):
        if not usable_by(workflow, held):
            continue
        for ref in workflow.target_roles:
            entry = aggregated.setdefault(
                uuid.UUID(ref["id"]),
                {"actions": set(), "grant_types": set(), "max_floating": 0, "max_time": 0},
            )
            entry["actions"].add(workflow.action)
            entry["grant_types"].update(workflow.grant_types)
            entry["max_floating"] = max(entry["max_floating"], workflow.max_floating_duration)
            entry["max_time"] = max(entry["max_time"], workflow.max_time_restricted_duration)
    handles = Handles()
    handles.want_role_ids(aggregated)
    await handles.load(session)
    items = []
    for role_id, entry in aggregated.items():
        handle = handles.role(role_id)
        if handle.deleted:
            continue
        actions = entry["actions"]
        action = actions.pop() if len(actions) == 1 else WorkflowAction.BOTH
        items.append(
            RequestableRole(
                id=role_id,
                name=handle.name,
                action=action,
                grant_types=sorted(entry["grant_types"]),
                max_floating_duration=entry["max_floating"],
                max_time_restricted_duration=entry["max_time"],
            )
        )
    items.sort(key=lambda r: r.name, reverse=page.descending)
    return len(items), items[page.offset : page.offset + page.limit]


async def workflows_using_role(session: AsyncSession, role_id: uuid.UUID) -> list[Workflow]:
    """Workflows that name the role as a target, a requester role or an approver role."""
    key = str(role_id)

    def uses(w: Workflow) -> bool:
        refs = [*w.target_roles, *w.requester_roles, *(a["role"] for s in w.steps for a in s["approvers"])]
        return any(r["id"] == key for r in refs)

    return [w for w in await session.scalars(select(Workflow)) if uses(w)]
