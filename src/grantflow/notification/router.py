"""Notification mail over HTTP: `/grantflow/api/v1/outbox` (what was mailed to whom, why a message failed, sending it
again; admins only) and the PrivX `POST /workflow-engine/api/v1/testsmtp`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from grantflow.db import ReadSessionDep, SessionDep
from grantflow.engine_settings.schemas import SettingsIn, SmtpTestOut
from grantflow.http.deps import Admin, WorkflowsManage
from grantflow.kit.pagination import Page, page_params
from grantflow.kit.schema import ResultSet
from grantflow.notification import outbox, testsmtp
from grantflow.notification.models import OutboxStatus
from grantflow.notification.schemas import OutboxMessageDetail, OutboxMessageOut
from grantflow.runtime import RuntimeDep

router = APIRouter(tags=["outbox"])
testsmtp_router = APIRouter(tags=["settings"])
OutboxPage = Annotated[Page, Depends(page_params(outbox.SORT_KEYS, "created", default_desc=True))]


@router.get("/outbox", response_model=ResultSet[OutboxMessageOut], summary="List notification mails")
async def list_outbox(
    _: Admin,
    session: ReadSessionDep,
    page: OutboxPage,
    status: Annotated[OutboxStatus | None, Query(description="only messages in this state")] = None,
    request_id: Annotated[uuid.UUID | None, Query(description="only mails about this request")] = None,
) -> ResultSet[OutboxMessageOut]:
    count, items = await outbox.list_messages(session, page, status, request_id)
    return ResultSet(count=count, items=[OutboxMessageOut.model_validate(m) for m in items])


@router.get("/outbox/{message_id}", response_model=OutboxMessageDetail, summary="One mail, with its bodies")
async def get_outbox_message(_: Admin, session: ReadSessionDep, message_id: uuid.UUID) -> OutboxMessageDetail:
    return OutboxMessageDetail.model_validate(await outbox.get_message(session, message_id))


@router.post(
    "/outbox/{message_id}/retry", response_model=OutboxMessageOut, summary="Send a failed or suppressed mail again"
)
async def retry_outbox_message(
    _: Admin, session: SessionDep, runtime: RuntimeDep, message_id: uuid.UUID
) -> OutboxMessageOut:
    return OutboxMessageOut.model_validate(await outbox.retry(session, message_id, runtime.clock.now()))


@testsmtp_router.post(
    "/testsmtp", response_model=SmtpTestOut, summary="Test e-mail settings merged over the stored ones"
)
async def test_smtp(principal: WorkflowsManage, runtime: RuntimeDep, body: SettingsIn) -> SmtpTestOut:
    return await testsmtp.test_smtp(runtime, principal.user_id, body)
