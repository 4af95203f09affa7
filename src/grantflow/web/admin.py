"""Administrator pages: workflows, roles and users, settings with the SMTP test, the outbox and the audit log.

Each page checks the same scopes as the API endpoint it stands beside; a page a viewer may not use answers 403.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from grantflow.audit import service as audit_service
from grantflow.audit.service import AuditAction, EventFilter
from grantflow.auth.scopes import Scope
from grantflow.db import ReadSessionDep, SessionDep
from grantflow.deletion import service as deletion
from grantflow.engine_settings import service as settings_service
from grantflow.engine_settings.schemas import SettingsIn, SmtpAuthMode, SmtpProtocol, SmtpProvider
from grantflow.errors import GrantflowError, InvalidRequestData, PermissionDenied
from grantflow.kit.pagination import Page
from grantflow.notification import outbox, testsmtp
from grantflow.notification.models import OutboxStatus
from grantflow.role import service as role_service
from grantflow.role.models import GrantType
from grantflow.role.permissions import PERMISSION_SCOPES
from grantflow.runtime import RuntimeDep
from grantflow.user import service as user_service
from grantflow.user.models import SourceType
from grantflow.user.schemas import LocalUserIn
from grantflow.web.forms import FieldErrors, errors_of, parse, whole_number
from grantflow.web.pages import CheckedForm, PageRoute, SignedIn, form_text, redirect
from grantflow.web.pages import render as page
from grantflow.web.sessions import Viewer
from grantflow.workflow import service as workflow_service
from grantflow.workflow.models import StepMatch
from grantflow.workflow.schemas import MAX_STEPS, WorkflowIn, WorkflowOut

router = APIRouter(prefix="/admin", route_class=PageRoute, include_in_schema=False)
NEWEST = Page(offset=0, limit=100, sortkey="created", descending=True)
BY_NAME = Page(offset=0, limit=1000, sortkey="name", descending=False)
# testsmtp's stages in the order the conversation reaches them (decisions.md §6.1), with the detail keys of each.
SMTP_STAGES: dict[str, tuple[str, ...]] = {
    "config": (),
    "resolve": ("resolved",),
    "connect": ("connect_ms",),
    "banner": ("banner",),
    "ehlo": ("ehlo", "extensions"),
    "tls": ("tls_version", "tls_cipher", "certificate_subject", "certificate_issuer", "certificate_expires"),
    "token": ("token_endpoint", "token"),
    "auth": ("auth_offered", "auth_used", "auth"),
    "mail": ("mail",),
    "rcpt": ("rcpt",),
    "data": ("data", "message_id"),
}


def require(viewer: Viewer, *scopes: Scope) -> None:
    if not viewer.principal.has(*scopes):
        raise PermissionDenied("this page needs one of the permissions: " + ", ".join(scopes))


# -- workflows --------------------------------------------------------------------------------------------------


@router.get("/workflows")
async def workflows(request: Request, viewer: SignedIn, session: ReadSessionDep) -> Response:
    require(viewer, Scope.WORKFLOWS_MANAGE, Scope.WORKFLOWS_VIEW)
    _, found = await workflow_service.list_workflows(session, BY_NAME)
    return page(request, "admin_workflows.html", viewer, workflows=await workflow_service.render(session, found))


async def _workflow_form(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    workflow: WorkflowOut | None,
    values: dict[str, Any] | None = None,
    errors: FieldErrors | None = None,
    status: int = 200,
) -> Response:
    _, roles = await role_service.list_roles(session, BY_NAME)
    return page(
        request,
        "admin_workflow_form.html",
        viewer,
        status_code=status,
        workflow=workflow,
        values=values if values is not None else _values_of(workflow),
        errors=errors or {},
        roles=roles,
        grant_types=list(GrantType),
        matches=list(StepMatch),
        max_steps=MAX_STEPS,
    )


def _values_of(workflow: WorkflowOut | None) -> dict[str, Any]:
    """The form's fields for a stored workflow (or a new one)."""
    if workflow is None:
        steps = [{"name": "Approval", "match": "ANY", "roles": []}]
        return {
            "name": "",
            "comment": "",
            "grant_types": ["PERMANENT"],
            "steps": steps,
            "target_roles": [],
            "requester_roles": [],
            "max_time_restricted_duration": 0,
            "max_floating_duration": 0,
            "max_active_requests": 1,
            "requires_justification": False,
            "can_bypass_revoke_workflow": False,
        }
    return {
        **workflow.model_dump(
            include={
                "name",
                "comment",
                "max_time_restricted_duration",
                "max_floating_duration",
                "max_active_requests",
                "requires_justification",
                "can_bypass_revoke_workflow",
            }
        ),
        "grant_types": [str(g) for g in workflow.grant_types],
        "target_roles": [str(r.id) for r in workflow.target_roles],
        "requester_roles": [str(r.id) for r in workflow.requester_roles],
        "steps": [
            {"name": s.name, "match": str(s.match), "roles": [str(a.role.id) for a in s.approvers]}
            for s in workflow.steps
        ],
    }


def _chosen(form: FormData, name: str) -> list[str]:
    """The values picked in a multiple select or a group of checkboxes (an empty pick sends nothing or "")."""
    return [str(v) for v in form.getlist(name) if v]


def _workflow_values(form: FormData) -> dict[str, Any]:
    steps = []
    for i in range(MAX_STEPS):
        name = form_text(form, f"step{i}_name")
        if name:
            steps.append(
                {
                    "name": name,
                    "match": form_text(form, f"step{i}_match") or "ANY",
                    "roles": _chosen(form, f"step{i}_roles"),
                }
            )
    return {
        "name": form_text(form, "name"),
        "comment": form_text(form, "comment"),
        "grant_types": _chosen(form, "grant_types"),
        "target_roles": _chosen(form, "target_roles"),
        "requester_roles": _chosen(form, "requester_roles"),
        "max_time_restricted_duration": whole_number(form_text(form, "max_time_restricted_duration")) or 0,
        "max_floating_duration": whole_number(form_text(form, "max_floating_duration")) or 0,
        "max_active_requests": whole_number(form_text(form, "max_active_requests")) or 0,
        "requires_justification": form.get("requires_justification") == "on",
        "can_bypass_revoke_workflow": form.get("can_bypass_revoke_workflow") == "on",
        "steps": steps,
    }


def _refs(ids: list[str]) -> list[dict[str, str]]:
    return [{"id": i} for i in ids]


def _workflow_body(values: dict[str, Any]) -> dict[str, Any]:
    """The API's workflow body from the form's values (what POST /workflows would be sent)."""
    steps = [
        {"name": s["name"], "match": s["match"], "approvers": [{"role": {"id": r}} for r in s["roles"]]}
        for s in values["steps"]
    ]
    return {
        **values,
        "action": "GRANT",
        "target_roles": _refs(values["target_roles"]),
        "requester_roles": _refs(values["requester_roles"]),
        "steps": steps,
    }


async def _save_workflow(
    request: Request,
    viewer: Viewer,
    form: FormData,
    session: AsyncSession,
    now: datetime,
    workflow_id: uuid.UUID | None,
) -> Response:
    require(viewer, Scope.WORKFLOWS_MANAGE)
    values = _workflow_values(form)
    body, errors = parse(WorkflowIn, _workflow_body(values))
    if body is not None:
        try:
            if workflow_id is None:
                await workflow_service.create_workflow(session, body, viewer.user.id, now)
            else:
                await workflow_service.update_workflow(session, workflow_id, body, viewer.user.id, now)
            return redirect("/admin/workflows")
        except InvalidRequestData as refused:
            await session.rollback()
            errors = errors_of(refused)
    stored = None
    if workflow_id is not None:
        stored = (await workflow_service.render(session, [await workflow_service.get_workflow(session, workflow_id)]))[
            0
        ]
    return await _workflow_form(request, session, viewer, stored, values, errors, status=400)


@router.get("/workflows/new")
async def new_workflow(request: Request, viewer: SignedIn, session: ReadSessionDep) -> Response:
    require(viewer, Scope.WORKFLOWS_MANAGE)
    return await _workflow_form(request, session, viewer, None)


@router.post("/workflows/new")
async def create_workflow(
    request: Request, viewer: SignedIn, form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    return await _save_workflow(request, viewer, form, session, runtime.clock.now(), None)


@router.get("/workflows/{workflow_id}")
async def edit_workflow(
    request: Request, workflow_id: uuid.UUID, viewer: SignedIn, session: ReadSessionDep
) -> Response:
    require(viewer, Scope.WORKFLOWS_MANAGE)
    stored = (await workflow_service.render(session, [await workflow_service.get_workflow(session, workflow_id)]))[0]
    return await _workflow_form(request, session, viewer, stored)


@router.post("/workflows/{workflow_id}")
async def update_workflow(
    request: Request,
    workflow_id: uuid.UUID,
    viewer: SignedIn,
    form: CheckedForm,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    return await _save_workflow(request, viewer, form, session, runtime.clock.now(), workflow_id)


@router.post("/workflows/{workflow_id}/delete")
async def delete_workflow(
    workflow_id: uuid.UUID, viewer: SignedIn, _form: CheckedForm, session: SessionDep
) -> Response:
    require(viewer, Scope.WORKFLOWS_MANAGE)
    await workflow_service.delete_workflow(session, workflow_id)
    return redirect("/admin/workflows")


# -- roles and users --------------------------------------------------------------------------------------------


async def _people(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    runtime: RuntimeDep,
    errors: FieldErrors | None = None,
    status: int = 200,
) -> Response:
    _, roles = await role_service.list_roles(session, BY_NAME)
    counts = await role_service.role_counts(session, [r.id for r in roles], runtime.clock.now())
    _, users = await user_service.list_users(session, Page(0, 1000, "username", False), SourceType.LOCAL)
    return page(
        request,
        "admin_people.html",
        viewer,
        status_code=status,
        roles=roles,
        counts=counts,
        users=users,
        permissions=sorted(PERMISSION_SCOPES),
        errors=errors or {},
    )


@router.get("/people")
async def people(request: Request, viewer: SignedIn, session: ReadSessionDep, runtime: RuntimeDep) -> Response:
    require(viewer, Scope.ROLES_MANAGE, Scope.USERS_MANAGE)
    return await _people(request, session, viewer, runtime)


@router.post("/roles")
async def create_role(
    request: Request, viewer: SignedIn, form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    require(viewer, Scope.ROLES_MANAGE)
    name = form_text(form, "name")
    if not name:
        return await _people(request, session, viewer, runtime, {"name": "a role needs a name"}, status=400)
    try:
        role = await role_service.create_role(
            session, name, [str(p) for p in form.getlist("permissions")], form_text(form, "comment")
        )
    except GrantflowError as refused:
        await session.rollback()
        return await _people(request, session, viewer, runtime, errors_of(refused), status=400)
    return redirect(f"/admin/roles/{role.id}")


@router.post("/users")
async def create_user(
    request: Request, viewer: SignedIn, form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    require(viewer, Scope.USERS_MANAGE)
    values = {
        "username": form_text(form, "username"),
        "display_name": form_text(form, "display_name"),
        "email": form_text(form, "email"),
        "password": {"password": str(form.get("password") or "")},
    }
    body, errors = parse(LocalUserIn, values)
    if body is not None:
        try:
            await user_service.create_local_user(session, runtime.passwords, body, viewer.user.id)
            return redirect("/admin/people")
        except GrantflowError as refused:
            await session.rollback()
            errors = errors_of(refused)
    return await _people(request, session, viewer, runtime, {f"user.{k}": v for k, v in errors.items()}, status=400)


@router.get("/roles/{role_id}")
async def role_page(
    request: Request,
    role_id: uuid.UUID,
    viewer: SignedIn,
    session: ReadSessionDep,
    runtime: RuntimeDep,
    problem: str = "",
) -> Response:
    require(viewer, Scope.ROLES_MANAGE)
    role = await role_service.get_role(session, role_id)
    held = await role_service.memberships_of_role(session, role_id, runtime.clock.now())
    return page(request, "admin_role.html", viewer, role=role, memberships=held, problem=problem)


@router.post("/roles/{role_id}/members")
async def add_member(role_id: uuid.UUID, viewer: SignedIn, form: CheckedForm, session: SessionDep) -> Response:
    require(viewer, Scope.ROLES_MANAGE)
    role = await role_service.get_role(session, role_id)
    user = await user_service.get_by_username(session, form_text(form, "username"))
    if user is None:
        return redirect(f"/admin/roles/{role_id}?problem=no+user+has+this+username")
    await role_service.add_mapped_member(session, role, user.id)
    return redirect(f"/admin/roles/{role_id}")


@router.post("/roles/{role_id}/members/{user_id}/remove")
async def remove_member(
    role_id: uuid.UUID, user_id: uuid.UUID, viewer: SignedIn, _form: CheckedForm, session: SessionDep
) -> Response:
    require(viewer, Scope.ROLES_MANAGE)
    await role_service.remove_mapped_member(session, role_id, user_id)
    return redirect(f"/admin/roles/{role_id}")


@router.post("/roles/{role_id}/delete")
async def delete_role(
    role_id: uuid.UUID, viewer: SignedIn, _form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    require(viewer, Scope.ROLES_MANAGE)
    await deletion.delete_role(session, role_id, viewer.principal, runtime.clock.now())
    return redirect("/admin/people")


# -- settings ---------------------------------------------------------------------------------------------------


def _settings_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {
        "smtp_server_enabled": form.get("smtp_server_enabled") == "on",
        "smtp_server_insecure_verify": form.get("smtp_server_insecure_verify") == "on",
    }
    for key in (
        "smtp_server",
        "smtp_server_username",
        "smtp_sender_address",
        "privx_backend_address",
        "smtp_provider_token_endpoint",
        "smtp_provider_token_scope",
        "test_recipient",
    ):
        values[key] = form_text(form, key) or None
    for key in ("smtp_server_protocol", "smtp_provider", "smtp_authentication_mode"):
        values[key] = form_text(form, key) or None
    for key in (
        "smtp_server_port",
        "smtp_retry_attempts",
        "request_role_max_approvers",
        "request_expiry_hours",
        "reminder_hours",
        "expiry_notice_hours",
    ):
        values[key] = whole_number(form_text(form, key))
    password = form.get("smtp_server_password")
    values["smtp_server_password"] = password if isinstance(password, str) and password else None
    return values


async def _settings_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    notice: str = "",
    errors: FieldErrors | None = None,
    test: list[dict[str, str]] | None = None,
    test_status: str = "",
    values: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    stored = await settings_service.get_settings(session)
    has_password = await settings_service.has_stored_password(session)
    return page(
        request,
        "admin_settings.html",
        viewer,
        status_code=status,
        settings=values or stored.model_dump(),
        has_password=has_password,
        protocols=list(SmtpProtocol),
        providers=list(SmtpProvider),
        auth_modes=list(SmtpAuthMode),
        notice=notice,
        errors=errors or {},
        test=test,
        test_status=test_status,
    )


@router.get("/settings")
async def settings(request: Request, viewer: SignedIn, session: ReadSessionDep) -> Response:
    require(viewer, Scope.WORKFLOWS_MANAGE, Scope.WORKFLOWS_VIEW)
    notice = "Settings saved." if "saved" in request.query_params else ""
    return await _settings_page(request, session, viewer, notice)


@router.post("/settings")
async def save_settings(
    request: Request, viewer: SignedIn, form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    require(viewer, Scope.WORKFLOWS_MANAGE)
    values = _settings_values(form)
    values.pop("test_recipient")
    body, errors = parse(SettingsIn, values)
    if body is not None:
        try:
            await settings_service.update_settings(session, runtime.secret_box, body, runtime.clock.now())
            return redirect("/admin/settings?saved=1")
        except InvalidRequestData as refused:
            await session.rollback()
            errors = errors_of(refused)
    return await _settings_page(request, session, viewer, errors=errors, values=values, status=400)


@router.post("/settings/test")
async def test_settings(
    request: Request, viewer: SignedIn, form: CheckedForm, session: ReadSessionDep, runtime: RuntimeDep
) -> Response:
    require(viewer, Scope.WORKFLOWS_MANAGE)
    values = _settings_values(form)
    body, errors = parse(SettingsIn, values)
    if body is None:
        return await _settings_page(request, session, viewer, errors=errors, values=values, status=400)
    result = await testsmtp.test_smtp(runtime, viewer.user.id, body)
    return await _settings_page(
        request, session, viewer, test=checklist(result.details), test_status=result.status, values=values
    )


def checklist(details: dict[str, str]) -> list[dict[str, str]]:
    """testsmtp's details as one line per stage reached: ok, or failed with what happened and what to change."""
    failed = details.get("error_stage")
    lines = []
    for stage, keys in SMTP_STAGES.items():
        facts = {k: details[k] for k in keys if k in details}
        if stage == failed:
            lines.append(
                {"stage": stage, "state": "failed", "text": details.get("error", ""), "hint": details.get("hint", "")}
            )
            break
        if facts:
            lines.append(
                {"stage": stage, "state": "ok", "text": "; ".join(f"{k}: {v}" for k, v in facts.items()), "hint": ""}
            )
    return lines


# -- outbox and audit -------------------------------------------------------------------------------------------


@router.get("/outbox")
async def outbox_page(request: Request, viewer: SignedIn, session: ReadSessionDep, status: str = "") -> Response:
    require(viewer, Scope.ADMIN)
    wanted = OutboxStatus(status) if status in OutboxStatus.__members__ else None
    count, messages = await outbox.list_messages(session, NEWEST, wanted, None)
    return page(
        request, "admin_outbox.html", viewer, messages=messages, count=count, statuses=list(OutboxStatus), status=status
    )


@router.post("/outbox/{message_id}/retry")
async def retry(
    message_id: uuid.UUID, viewer: SignedIn, _form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    require(viewer, Scope.ADMIN)
    await outbox.retry(session, message_id, runtime.clock.now())
    return redirect("/admin/outbox")


@router.get("/audit")
async def audit(
    request: Request,
    viewer: SignedIn,
    session: ReadSessionDep,
    action: str = "",
    request_id: str = "",
    user: str = "",
    actor: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    require(viewer, Scope.ADMIN)
    wanted = EventFilter(
        action=AuditAction(action) if action in AuditAction.__members__ else None,
        request_id=_uuid(request_id),
        user_id=await _user_id(session, user),
        actor_id=await _user_id(session, actor),
        since=_time(since),
        until=_time(until),
    )
    newest_first = Page(offset=0, limit=100, sortkey="at", descending=True)
    count, events = await audit_service.list_events(session, newest_first, wanted)
    return page(
        request,
        "admin_audit.html",
        viewer,
        events=events,
        count=count,
        actions=list(AuditAction),
        filters={
            "action": action,
            "request_id": request_id,
            "user": user,
            "actor": actor,
            "since": since,
            "until": until,
        },
    )


async def _user_id(session: AsyncSession, username: str) -> uuid.UUID | None:
    """The user a filter names; an unknown name matches nobody."""
    if not username:
        return None
    found = await user_service.get_by_username(session, username)
    return found.id if found else uuid.UUID(int=0)


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
    except ValueError:
        return None
