"""Approver pages: the queue, the request page (also the requester's), deciding and revoking.

A GET never changes anything: mail scanners open every link in a mail before the person does.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.access_request import commands, queries, render
from grantflow.access_request.queries import RequestFilter
from grantflow.access_request.schemas import DecisionIn
from grantflow.db import ReadSessionDep, SessionDep
from grantflow.errors import GrantflowError, InvalidRequestData, PermissionDenied
from grantflow.role import service as role_service
from grantflow.runtime import RuntimeDep
from grantflow.web.forms import parse
from grantflow.web.pages import CheckedForm, PageRoute, SignedIn, form_text, redirect
from grantflow.web.pages import render as page
from grantflow.web.requester import PAGE_SIZE, listed, page_of
from grantflow.web.sessions import Viewer

router = APIRouter(route_class=PageRoute, include_in_schema=False)
OTHER_APPROVERS_SHOWN = 20
NOTICES = {
    "filed": "Your request was filed. Its approvers have been told.",
    "decided": "Your decision was recorded.",
    "revoked": "The role was revoked.",
    "cancelled": "The request was cancelled.",
}


@router.get("/approvals")
async def approvals(
    request: Request, viewer: SignedIn, session: ReadSessionDep, runtime: RuntimeDep, page_number: int = 1
) -> Response:
    now = runtime.clock.now()
    waiting_count, waiting = await listed(session, viewer, RequestFilter.ACTIVE_APPROVALS, page_of(page_number), now)
    _, decided_rows = await queries.list_decided_by(session, viewer.user.id, page_of(1))
    decided = await render.render(session, viewer.principal, decided_rows)
    return page(
        request,
        "approvals.html",
        viewer,
        waiting=waiting,
        waiting_count=waiting_count,
        decided=decided,
        page_number=page_number,
        page_size=PAGE_SIZE,
    )


async def _request_page(
    request: Request,
    session: AsyncSession,
    viewer: Viewer,
    runtime: RuntimeDep,
    request_id: uuid.UUID,
    notice: str = "",
    problem: str = "",
    status: int = 200,
) -> Response:
    now = runtime.clock.now()
    shown = await render.read_request(session, viewer.principal, request_id, now)
    step = shown.steps[shown.current_step] if shown.steps else None
    others = []
    if shown.status == "WAITING" and step is not None:
        deciders = {a.user.id for a in step.approvers if a.user is not None}
        excluded = {shown.requester.id, shown.target_user.id, viewer.user.id, *deciders}
        role_ids = {a.role.id for a in step.approvers}
        others = await role_service.mapped_members(session, role_ids, now, excluded, OTHER_APPROVERS_SHOWN)
    return page(
        request,
        "request.html",
        viewer,
        status_code=status,
        req=shown,
        can_decide=await queries.may_decide(session, viewer.principal, request_id, now),
        can_cancel=shown.status == "WAITING" and shown.requester.id == viewer.user.id,
        others=others,
        notice=notice,
        problem=problem,
    )


@router.get("/requests/{request_id}")
async def request_page(
    request: Request, request_id: uuid.UUID, viewer: SignedIn, session: ReadSessionDep, runtime: RuntimeDep
) -> Response:
    notice = next((text for key, text in NOTICES.items() if key in request.query_params), "")
    return await _request_page(request, session, viewer, runtime, request_id, notice)


@router.post("/requests/{request_id}/decision")
async def decide(
    request: Request,
    request_id: uuid.UUID,
    viewer: SignedIn,
    form: CheckedForm,
    session: SessionDep,
    runtime: RuntimeDep,
) -> Response:
    step = form_text(form, "step")
    body, invalid = parse(
        DecisionIn,
        {
            "step": int(step) if step.isdigit() else step,
            "decision": form_text(form, "decision"),
            "comment": form_text(form, "comment"),
        },
    )
    if body is None:
        problem = "; ".join(invalid.values())
        return await _request_page(request, session, viewer, runtime, request_id, problem=problem, status=400)
    try:
        await commands.decide(session, viewer.principal, request_id, body, runtime.clock.now())
    except (InvalidRequestData, PermissionDenied) as refused:
        await session.rollback()
        problem = await _why_not(session, viewer, runtime, request_id, body.step, refused)
        return await _request_page(request, session, viewer, runtime, request_id, problem=problem, status=409)
    return redirect(f"/requests/{request_id}?decided=1")


async def _why_not(
    session: AsyncSession,
    viewer: Viewer,
    runtime: RuntimeDep,
    request_id: uuid.UUID,
    step: int,
    refused: GrantflowError,
) -> str:
    """A decision that lost the race says who closed the step and when, rather than only that it failed."""
    shown = await render.read_request(session, viewer.principal, request_id, runtime.clock.now())
    if step >= len(shown.steps):
        return refused.message
    decided = [a for a in shown.steps[step].approvers if a.user is not None and a.decision_time is not None]
    step_closed = shown.status != "WAITING" or shown.current_step != step
    if not decided or not step_closed:
        return refused.message
    who = ", ".join(
        f"{a.user.display_name} ({a.decision.lower()}, {a.decision_time:%Y-%m-%d %H:%M} UTC)"
        for a in decided
        if a.user is not None and a.decision_time is not None
    )
    return f"Step {step + 1} was already decided by {who}. Nothing was changed by your decision."


@router.post("/requests/{request_id}/revoke")
async def revoke(
    request_id: uuid.UUID, viewer: SignedIn, _form: CheckedForm, session: SessionDep, runtime: RuntimeDep
) -> Response:
    await commands.revoke_role(session, viewer.principal, request_id, runtime.clock.now())
    return redirect(f"/requests/{request_id}?revoked=1")
