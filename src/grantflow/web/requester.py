"""Requester pages: ask for a role, follow my requests, see and start my access."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.access_request import commands, queries, render
from grantflow.access_request.queries import RequestFilter
from grantflow.access_request.schemas import AccessRequestIn, AccessRequestOut
from grantflow.auth.scopes import Scope
from grantflow.db import ReadSessionDep, SessionDep
from grantflow.errors import InvalidRequestData
from grantflow.grant import service as grant_service
from grantflow.kit.pagination import Page
from grantflow.role import service as role_service
from grantflow.role.handles import Handles
from grantflow.runtime import RuntimeDep
from grantflow.user import service as user_service
from grantflow.web.forms import FieldErrors, errors_of, local_time, parse, whole_number
from grantflow.web.pages import CheckedForm, PageRoute, SignedIn, form_text, redirect
from grantflow.web.pages import render as page
from grantflow.web.sessions import Viewer
from grantflow.workflow import service as workflow_service
from grantflow.workflow.models import Workflow

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE_SIZE = 25
ALL_ROLES = Page(offset=0, limit=1000, sortkey="name", descending=False)


MAX_PAGE = 10_000  # a page number past this shows an empty page rather than asking the database for it


def page_of(number: int) -> Page:
    """Page `number` (from 1) of a list, newest first; out-of-range numbers are brought into range."""
    number = min(max(number, 1), MAX_PAGE)
    return Page(offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE, sortkey="created", descending=True)


async def listed(
    session: AsyncSession, viewer: Viewer, which: RequestFilter, page: Page, now: datetime
) -> tuple[int, list[AccessRequestOut]]:
    """One list of requests as the API's filter gives it, rendered as the API renders it."""
    count, items = await queries.list_requests(session, viewer.principal, which, page, now)
    return count, await render.render(session, viewer.principal, items)


@router.get("/")
async def home(_viewer: SignedIn) -> Response:
    return redirect("/requests")


# -- request access ---------------------------------------------------------------------------------------------


async def _workflows_for(
    session: AsyncSession, viewer: Viewer, role_id: uuid.UUID, runtime: RuntimeDep
) -> list[Workflow]:
    """The workflows through which this viewer may ask for the role."""
    held = {r.id for r in await role_service.effective_roles(session, viewer.user.id, runtime.clock.now())}
    return [
        w
        for w in await workflow_service.workflows_for_role(session, role_id)
        if workflow_service.covers(w, "GRANT") and workflow_service.usable_by(w, held)
    ]


async def _request_form(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    runtime: RuntimeDep,
    role_id: uuid.UUID | None,
    values: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    status: int = 200,
) -> Response:
    _, roles = await workflow_service.requestable_roles(session, viewer.user.id, runtime.clock.now(), ALL_ROLES)
    roles = [r for r in roles if r.action in ("GRANT", "BOTH")]
    chosen = next((r for r in roles if r.id == role_id), None)
    workflows = await _workflows_for(session, viewer, chosen.id, runtime) if chosen else []
    return page(
        request,
        "request_access.html",
        viewer,
        status_code=status,
        roles=roles,
        chosen=chosen,
        workflows=workflows,
        needs_justification=any(w.requires_justification for w in workflows),
        on_behalf=viewer.principal.has(Scope.WORKFLOWS_REQUEST_ON_BEHALF),
        values=values or {},
        errors=errors or {},
    )


@router.get("/request-access")
async def request_access(
    request: Request, viewer: SignedIn, session: ReadSessionDep, runtime: RuntimeDep, role: str = ""
) -> Response:
    role_id = _uuid_or_none(role)
    return await _request_form(request, session, viewer, runtime, role_id)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _request_body(form: dict[str, str], target_id: str | None) -> dict[str, Any]:
    grant_type = form.get("grant_type", "")
    body: dict[str, Any] = {
        "requested_role": {"id": form.get("role", "")},
        "grant_type": grant_type,
        "request_justification": form.get("request_justification", ""),
        "workflow": form.get("workflow", ""),
    }
    if target_id:
        body["target_user"] = {"id": target_id}
    if grant_type == "TIME_RESTRICTED":
        body["grant_start"] = local_time(form.get("grant_start", ""), form.get("tz_offset", ""))
        body["grant_end"] = local_time(form.get("grant_end", ""), form.get("tz_offset", ""))
    if grant_type == "FLOATING":
        body["floating_length"] = whole_number(form.get("floating_length", ""))
    return body


@router.post("/request-access")
async def file_request(
    request: Request, viewer: SignedIn, form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    values = {k: form_text(form, k) for k in form}
    role_id = _uuid_or_none(values.get("role", ""))
    errors: FieldErrors = {}
    target_id = None
    if values.get("target_username"):
        target = await user_service.get_by_username(session, values["target_username"])
        if target is None:
            errors["target_user.id"] = "no user has this username"
        target_id = str(target.id) if target else None
    body, invalid = parse(AccessRequestIn, _request_body(values, target_id))
    errors.update(invalid)
    if body is not None and not errors:
        try:
            created = await commands.create_request(session, viewer.principal, body, runtime.clock.now())
        except InvalidRequestData as refused:
            await session.rollback()
            errors = errors_of(refused)
        else:
            return redirect(f"/requests/{created.id}?filed=1")
    return await _request_form(request, session, viewer, runtime, role_id, values, errors, status=400)


# -- my requests ------------------------------------------------------------------------------------------------


@router.get("/requests")
async def my_requests(
    request: Request, viewer: SignedIn, session: ReadSessionDep, runtime: RuntimeDep, page_number: int = 1
) -> Response:
    count, shown = await listed(session, viewer, RequestFilter.REQUESTS, page_of(page_number), runtime.clock.now())
    return page(
        request, "my_requests.html", viewer, requests=shown, count=count, page_number=page_number, page_size=PAGE_SIZE
    )


@router.post("/requests/{request_id}/cancel")
async def cancel(
    request_id: uuid.UUID, viewer: SignedIn, _form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await commands.delete_request(session, viewer.principal, request_id, runtime.clock.now())
    return redirect(f"/requests/{request_id}")


# -- my access --------------------------------------------------------------------------------------------------


@router.get("/access")
async def my_access(request: Request, viewer: SignedIn, session: ReadSessionDep, runtime: RuntimeDep) -> Response:
    wanted = grant_service.GrantFilter(user_id=viewer.user.id)
    newest = Page(offset=0, limit=100, sortkey="created", descending=True)
    _, grants = await grant_service.list_grants(session, newest, wanted)
    handles = Handles()
    handles.want_role_ids(g.role_id for g in grants)
    await handles.load(session)
    rows = [(g, handles.role(g.role_id).name) for g in grants]
    return page(request, "my_access.html", viewer, grants=rows, now=runtime.clock.now())


@router.post("/access/{grant_id}/activate")
async def activate(
    grant_id: uuid.UUID, viewer: SignedIn, _form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await grant_service.activate(session, grant_id, viewer.user.id, runtime.clock.now())
    return redirect("/access")
