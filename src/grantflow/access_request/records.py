"""Requests as they are shown: plain records, read without the ORM (kit/prepared.py, access_request/queries.py).

`GET /requests/{id}`, every list and search, and the web UI's pages render these; commands keep ORM rows, which
the visibility and revocation rules take as well (`AnyRequest`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from grantflow.access_request.models import AccessRequest
from grantflow.access_request.snapshot import ReadsSnapshot


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """One approver entry of a step, as shown."""

    id: uuid.UUID
    step_index: int
    role_id: uuid.UUID
    role_name: str
    decision: str
    decider_id: uuid.UUID | None
    decider_name: str | None
    decision_time: datetime | None
    comment: str | None


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """Where the grant of an approved request stands."""

    state: str
    started_at: datetime | None
    ends_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class RequestRecord(ReadsSnapshot):
    """A request's columns as the renderer and the visibility rule read them; `approvers` in step order, `grant`
    once it was approved."""

    id: uuid.UUID
    workflow_id: uuid.UUID
    name: str
    requester_id: uuid.UUID
    requester_name: str
    target_user_id: uuid.UUID
    target_user_name: str
    requested_role_id: uuid.UUID
    requested_role_name: str
    action: str
    status: str
    current_step: int
    grant_type: str | None
    grant_start: datetime | None
    grant_end: datetime | None
    floating_length: int | None
    requested_grant_type: str | None
    requested_grant_start: datetime | None
    requested_grant_end: datetime | None
    requested_floating_length: int | None
    request_justification: str
    comment: str
    workflow_snapshot: dict[str, Any]
    steps: list[Any]
    target_role_revoked: bool
    target_role_revocation_time: datetime | None
    target_role_revoked_by: uuid.UUID | None
    author: uuid.UUID
    updated_by: uuid.UUID
    created: datetime
    updated: datetime
    approvers: tuple[EntryRecord, ...] = ()
    grant: GrantRecord | None = None

    def step_entries(self, step: int) -> list[EntryRecord]:
        return [a for a in self.approvers if a.step_index == step]


# What the visibility and revocation rules read: a record, or the ORM row a command holds.
AnyRequest = RequestRecord | AccessRequest


def column_names(record: type[Any]) -> list[str]:
    """The stored columns a record type reads, in field order (`approvers` and `grant` are filled separately)."""
    return [f.name for f in fields(record) if f.name not in ("approvers", "grant")]


REQUEST_COLUMNS = column_names(RequestRecord)
ENTRY_COLUMNS = column_names(EntryRecord)
GRANT_COLUMNS = column_names(GrantRecord)
