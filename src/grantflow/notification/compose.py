"""Who hears about what: a request's state change becomes outbox messages in the same transaction.

The access-request service calls one function per change (filed, decided, cancelled, revoked). Each works out
the recipients, renders the text and HTML bodies from the Jinja2 templates beside this file and writes one
outbox row per person; the delivery worker sends them later (decisions.md §6).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.audit import service as audit
from grantflow.audit.service import SYSTEM, AuditAction
from grantflow.db import isolated
from grantflow.engine_settings.schemas import SettingsOut
from grantflow.engine_settings.service import get_settings
from grantflow.notification.addresses import deliverable_address, header_text
from grantflow.notification.facts import GRANT, REMOVE, WAITING, RequestFacts
from grantflow.notification.models import OutboxEvent, OutboxMessage, OutboxStatus
from grantflow.notification.smtp import LOCAL_HOSTNAME
from grantflow.role import service as role_service
from grantflow.user.models import User

# With request_role_max_approvers = 0 ("all"), a step whose approver role is everyone still mails no more than this.
APPROVER_CAP = 500
NO_STEP = -1

log = logging.getLogger("grantflow.notification")
_templates = Environment(
    loader=PackageLoader("grantflow.notification", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    auto_reload=False,  # package files: checking each one's mtime on every mail cost a stat per template
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


class Audience(StrEnum):
    REQUESTER = "requester"
    TARGET = "target"
    APPROVER = "approver"


@dataclass(frozen=True)
class Mail:
    event: OutboxEvent
    audience: Audience
    users: Sequence[User]
    step: int = NO_STEP
    ends_at: datetime | None = None


# -- the changes ------------------------------------------------------------------------------------------------


async def request_filed(session: AsyncSession, request: RequestFacts, now: datetime) -> None:
    """Confirm to the requester; ask the current step's approvers (or announce an automatic approval)."""
    settings = await get_settings(session)
    mails = [Mail(OutboxEvent.FILED, Audience.REQUESTER, await _users(session, [request.requester_id]))]
    mails += await _after_transition(session, request, settings, now)
    await _enqueue(session, request, mails, settings, now)


async def step_closed(session: AsyncSession, request: RequestFacts, step: int, now: datetime) -> None:
    """A decision closed `step` (policy.Outcome.closes_step): tell its other approvers, then whoever comes next."""
    settings = await get_settings(session)
    deciders = {a.decider_id for a in request.approvers if a.step_index == step and a.decider_id is not None}
    others = await _approvers(session, request, step, settings, now, exclude=deciders)
    mails = [Mail(OutboxEvent.STEP_CLOSED, Audience.APPROVER, others, step)]
    mails += await _after_transition(session, request, settings, now)
    await _enqueue(session, request, mails, settings, now)


async def request_cancelled(session: AsyncSession, request: RequestFacts, now: datetime) -> None:
    """The requester withdrew: the approvers of the step that was waiting need not look any more."""
    settings = await get_settings(session)
    approvers = await _approvers(session, request, request.current_step, settings, now)
    await _enqueue(session, request, [Mail(OutboxEvent.CANCELLED, Audience.APPROVER, approvers)], settings, now)


async def role_revoked(session: AsyncSession, request: RequestFacts, now: datetime) -> None:
    """The role a request granted was taken away: the target user and the requester hear of it."""
    mails = await _to_requester_and_target(session, request, OutboxEvent.REVOKED)
    await _enqueue(session, request, mails, await get_settings(session), now)


async def request_expired(session: AsyncSession, request: RequestFacts, now: datetime) -> None:
    """Nobody decided in time: requester, target and the approvers of the step that was waiting hear of it."""
    settings = await get_settings(session)
    mails = await _to_requester_and_target(session, request, OutboxEvent.EXPIRED)
    approvers = await _approvers(session, request, request.current_step, settings, now)
    mails.append(Mail(OutboxEvent.EXPIRED, Audience.APPROVER, approvers))
    await _enqueue(session, request, mails, settings, now)


async def grant_ended(session: AsyncSession, request: RequestFacts | None, now: datetime) -> None:
    """The granted time ran out: the target user and the requester hear of it."""
    if request is None:
        return
    mails = await _to_requester_and_target(session, request, OutboxEvent.GRANT_ENDED)
    await _enqueue(session, request, mails, await get_settings(session), now)


async def grant_ending(session: AsyncSession, request: RequestFacts | None, ends_at: datetime, now: datetime) -> None:
    """The target user's grant ends soon."""
    if request is None:
        return
    target = await _users(session, [request.target_user_id])
    mail = Mail(OutboxEvent.GRANT_ENDING, Audience.TARGET, target, ends_at=ends_at)
    await _enqueue(session, request, [mail], await get_settings(session), now)


async def approval_reminder(session: AsyncSession, request: RequestFacts, now: datetime) -> None:
    """The current step has waited long: remind its approvers who have not decided it."""
    settings = await get_settings(session)
    step = request.current_step
    deciders = {a.decider_id for a in request.approvers if a.step_index == step and a.decider_id is not None}
    approvers = await _approvers(session, request, step, settings, now, exclude=deciders)
    await _enqueue(session, request, [Mail(OutboxEvent.REMINDER, Audience.APPROVER, approvers, step)], settings, now)


async def _after_transition(
    session: AsyncSession, request: RequestFacts, settings: SettingsOut, now: datetime
) -> list[Mail]:
    if request.status == WAITING:
        approvers = await _approvers(session, request, request.current_step, settings, now)
        return [Mail(OutboxEvent.APPROVAL_NEEDED, Audience.APPROVER, approvers, request.current_step)]
    if request.status in (OutboxEvent.APPROVED, OutboxEvent.DENIED):
        return await _to_requester_and_target(session, request, OutboxEvent(request.status))
    return []


async def _to_requester_and_target(session: AsyncSession, request: RequestFacts, event: OutboxEvent) -> list[Mail]:
    mails = [Mail(event, Audience.TARGET, await _users(session, [request.target_user_id]))]
    if request.requester_id != request.target_user_id:
        mails.append(Mail(event, Audience.REQUESTER, await _users(session, [request.requester_id])))
    return mails


# -- recipients -------------------------------------------------------------------------------------------------


async def _users(session: AsyncSession, ids: Iterable[uuid.UUID]) -> list[User]:
    """The users still there (a deleted one hears nothing)."""
    return list(await session.scalars(select(User).where(User.id.in_(set(ids)))))


async def _approvers(
    session: AsyncSession,
    request: RequestFacts,
    step: int,
    settings: SettingsOut,
    now: datetime,
    exclude: Iterable[uuid.UUID] = (),
) -> list[User]:
    """Who may decide the step (direct members of its approver roles), at most request_role_max_approvers."""
    limit = settings.request_role_max_approvers or APPROVER_CAP
    role_ids = {a.role_id for a in request.approvers if a.step_index == step}
    excluded = {request.requester_id, request.target_user_id, *exclude}
    return await role_service.mapped_members(session, role_ids, now, excluded, min(limit, APPROVER_CAP))


# -- rendering and writing --------------------------------------------------------------------------------------


async def _enqueue(
    session: AsyncSession, request: RequestFacts, mails: Sequence[Mail], settings: SettingsOut, now: datetime
) -> None:
    domain = _message_domain(settings)
    written = set(await session.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.request_id == request.id)))
    subject = subject_of(request)
    messages = []
    for mail in mails:
        text = _text(request, mail, settings, subject)  # the same for every recipient of this mail
        for user in mail.users:
            key = f"{request.id}:{mail.event}:{mail.step}:{user.id}"
            if key in written:
                continue  # the same event for the same person is mailed once
            written.add(key)
            messages.append(_message(request, text, user, settings, domain, key, now))
    if messages:  # one bulk INSERT: nothing reads these rows back as objects in this transaction
        await session.execute(insert(OutboxMessage), messages)
    await session.flush()


def _message(
    request: RequestFacts,
    text: _Text,
    user: User,
    settings: SettingsOut,
    domain: str,
    key: str,
    now: datetime,
) -> dict[str, object]:
    """The outbox row of one recipient's message."""
    address, problem = deliverable_address(user.email)
    status = OutboxStatus.PENDING
    if problem:
        status = OutboxStatus.SKIPPED
    elif not settings.smtp_server_enabled:
        status = OutboxStatus.SUPPRESSED
        problem = "e-mail notifications were disabled"
    message_id = uuid.uuid4()
    personal = {**text.context, "recipient_name": user.shown_name}
    return {
        "id": message_id,
        "dedupe_key": key,
        "event": text.event,
        "request_id": request.id,
        "recipient_id": user.id,
        "recipient_name": header_text(user.shown_name),
        "recipient_address": address,
        "subject": text.subject,
        "text_body": _templates.get_template("message.txt").render(personal),
        "html_body": _templates.get_template("message.html").render(personal),
        "message_id": f"<{message_id}@{domain}>",
        "thread_id": f"<request-{request.id}@{domain}>",
        "status": status,
        "last_error": problem,
        "next_attempt_at": now,
        "created": now,
        "updated": now,
    }


def _message_domain(settings: SettingsOut) -> str:
    domain = settings.smtp_sender_address.rpartition("@")[2]
    return domain if domain and domain.isascii() else LOCAL_HOSTNAME


def subject_of(request: RequestFacts) -> str:
    """One subject for the whole request, so that every mail client keeps the thread together."""
    subject = _templates.get_template("subject.txt").render(_names(request), short_id=str(request.id)[:8])
    return header_text(subject)


@dataclass(frozen=True)
class _Text:
    """What one mail says, the same for each of its recipients; their name is added per message."""

    event: OutboxEvent
    subject: str
    context: dict[str, object]


def _text(request: RequestFacts, mail: Mail, settings: SettingsOut, subject: str) -> _Text:
    headline, action_line = wording(request, mail)
    base = settings.privx_backend_address.rstrip("/")
    context: dict[str, object] = {
        "subject": subject,
        "headline": headline,
        "action_line": action_line,
        "facts": _facts(request),
        "link": f"{base}/requests/{request.id}" if base else "",
    }
    return _Text(event=mail.event, subject=subject, context=context)


def wording(request: RequestFacts, mail: Mail) -> tuple[str, str]:
    """The event's headline and action line, from templates/events/<event>.txt."""
    steps = request.step_snapshots
    step = steps[mail.step] if 0 <= mail.step < len(steps) else None
    deciders = sorted({a.decider_name or "" for a in request.approvers if a.step_index == mail.step and a.decider_name})
    module = _templates.get_template(f"events/{mail.event}.txt").make_module(
        {
            **_names(request),
            "you": mail.audience == Audience.TARGET,
            "approver": mail.audience == Audience.APPROVER,
            "step_number": mail.step + 1,
            "step_count": len(steps),
            "step_name": step.name if step else "",
            "deciders": ", ".join(deciders),
            "grant_line": _grant_line(request),
            "ends_at": _when(mail.ends_at) if mail.ends_at else "soon",
        }
    )
    return str(getattr(module, "headline", "")).strip(), str(getattr(module, "action_line", "")).strip()


def _names(request: RequestFacts) -> dict[str, object]:
    role, target = request.requested_role_name, request.target_user_name
    removal = request.action == REMOVE
    return {
        "role": role,
        "target": target,
        "requester": request.requester_name,
        "removal": removal,
        "change": f"removal of {role} from {target}" if removal else f"{role} for {target}",
    }


def _grant_line(request: RequestFacts) -> str:
    if request.grant_type == "TIME_RESTRICTED" and request.grant_start and request.grant_end:
        return f"The role is yours from {_when(request.grant_start)} until {_when(request.grant_end)}."
    if request.grant_type == "FLOATING":
        return f"The role starts when you first use it and then lasts {request.floating_length} hours."
    return "The role is yours until it is removed."


def _grant_summary(request: RequestFacts) -> str:
    if request.grant_type == "TIME_RESTRICTED" and request.grant_start and request.grant_end:
        return f"from {_when(request.grant_start)} until {_when(request.grant_end)}"
    if request.grant_type == "FLOATING":
        return f"floating: {request.floating_length} hours from first use"
    return "permanent"


def _facts(request: RequestFacts) -> list[tuple[str, str]]:
    facts = [
        ("Role", request.requested_role_name),
        ("For", request.target_user_name),
        ("Requested by", request.requester_name),
        ("Action", request.action),
        ("Status", request.status),
    ]
    if request.action == GRANT:
        facts.append(("Grant", _grant_summary(request)))
    if request.request_justification:
        facts.append(("Justification", request.request_justification))
    comments = [f"{a.decider_name}: {a.comment}" for a in request.approvers if a.comment]
    if comments:
        facts.append(("Comments", "\n".join(comments)))
    return facts


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


async def in_background(
    session: AsyncSession, request: RequestFacts, now: datetime, write: Coroutine[Any, Any, object]
) -> None:
    """Write a background job's mail so that its failure neither undoes the change nor stops the batch: the mail
    is rolled back, logged and audited (NOTIFICATION_FAILED), and the job goes on with the next row."""
    failure = await isolated(session, write)
    if failure is None:
        return
    log.error("the mail for request %s could not be written: %r", request.id, failure)
    reason = f"the mail could not be written ({type(failure).__name__}); the change itself was made"
    audit.record_request(session, AuditAction.NOTIFICATION_FAILED, now, SYSTEM, request, reason)
