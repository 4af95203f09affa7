"""What each notification says, per event and per reader: the wording lives in templates/events/<event>.txt."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from grantflow.notification.compose import Audience, Mail, subject_of, wording
from grantflow.notification.models import OutboxEvent


@dataclass(frozen=True)
class Entry:
    step_index: int
    role_id: uuid.UUID = field(default_factory=uuid.uuid4)
    decider_id: uuid.UUID | None = None
    decider_name: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Step:
    name: str


@dataclass(frozen=True)
class Request:
    """Only what notifications read (notification.facts.RequestFacts)."""

    id: uuid.UUID = field(default_factory=uuid.uuid4)
    requester_id: uuid.UUID = field(default_factory=uuid.uuid4)
    requester_name: str = "Alice"
    target_user_id: uuid.UUID = field(default_factory=uuid.uuid4)
    target_user_name: str = "Dave"
    requested_role_name: str = "linux-admins"
    action: str = "GRANT"
    status: str = "WAITING"
    current_step: int = 0
    request_justification: str = ""
    grant_type: str | None = "TIME_RESTRICTED"
    grant_start: datetime | None = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    grant_end: datetime | None = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    floating_length: int | None = None
    approvers: tuple[Entry, ...] = (Entry(0, decider_name="Bob"), Entry(1))
    step_snapshots: tuple[Step, ...] = (Step("team leads"), Step("security"))


def said(event: OutboxEvent, audience: Audience, request: Request | None = None, step: int = -1) -> tuple[str, str]:
    return wording(request or Request(), Mail(event, audience, (), step, datetime(2026, 12, 2, 16, 0, tzinfo=UTC)))


@pytest.mark.parametrize(
    ("event", "audience", "step", "headline", "action_line"),
    [
        (
            OutboxEvent.FILED,
            Audience.REQUESTER,
            -1,
            "Your request for linux-admins for Dave was filed",
            "You will hear",
        ),
        (
            OutboxEvent.APPROVAL_NEEDED,
            Audience.APPROVER,
            1,
            "Alice asks for linux-admins for Dave",
            "step 2 of 2 (security)",
        ),
        (OutboxEvent.REMINDER, Audience.APPROVER, 0, "Reminder: Alice still waits", "step 1 of 2 (team leads)"),
        (OutboxEvent.STEP_CLOSED, Audience.APPROVER, 0, "Bob decided step 1 of the request", "No action is needed"),
        (OutboxEvent.APPROVED, Audience.TARGET, -1, "You were granted linux-admins", "from 2026-12-02 08:00 UTC until"),
        (OutboxEvent.APPROVED, Audience.REQUESTER, -1, "The linux-admins for Dave was approved", ""),
        (OutboxEvent.DENIED, Audience.TARGET, -1, "The request for linux-admins for Dave was denied", ""),
        (OutboxEvent.CANCELLED, Audience.APPROVER, -1, "Alice withdrew the request", "No action is needed"),
        (OutboxEvent.EXPIRED, Audience.APPROVER, -1, "expired: nobody decided it in time", "No action is needed"),
        (OutboxEvent.EXPIRED, Audience.REQUESTER, -1, "expired: nobody decided it in time", "File it again"),
        (
            OutboxEvent.GRANT_ENDING,
            Audience.TARGET,
            -1,
            "Your linux-admins membership ends at 2026-12-02 16:00",
            "File a new",
        ),
        (OutboxEvent.GRANT_ENDED, Audience.TARGET, -1, "Your linux-admins membership has ended", ""),
        (OutboxEvent.GRANT_ENDED, Audience.REQUESTER, -1, "linux-admins has ended for Dave", ""),
        (OutboxEvent.REVOKED, Audience.TARGET, -1, "linux-admins was revoked from you", ""),
        (OutboxEvent.REVOKED, Audience.REQUESTER, -1, "linux-admins was revoked from Dave", ""),
    ],
)
def test_each_event_tells_its_reader_what_happened(
    event: OutboxEvent, audience: Audience, step: int, headline: str, action_line: str
) -> None:
    got_headline, got_action = said(event, audience, step=step)
    assert headline in got_headline
    assert action_line in got_action
    assert action_line or got_action == ""


def test_every_event_has_its_wording() -> None:
    for event in OutboxEvent:
        headline, _ = said(event, Audience.TARGET, step=0)
        assert "linux-admins" in headline, event


def test_a_removal_reads_as_one() -> None:
    removal = Request(action="REMOVE")
    assert said(OutboxEvent.APPROVED, Audience.TARGET, removal) == ("linux-admins was removed from you", "")
    assert subject_of(removal).startswith("[grantflow] Remove linux-admins from Dave (request ")
    assert subject_of(Request()).startswith("[grantflow] linux-admins for Dave (request ")
