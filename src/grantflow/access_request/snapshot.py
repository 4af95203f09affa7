"""The typed shape of the workflow copy that a request keeps (decisions.md §4: a snapshot at creation).

Stored as JSON; read and written only through these classes, so the keys and their defaults live in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from grantflow.role.models import StoredRoleRef
from grantflow.workflow.models import StepMatch, Workflow


@dataclass(frozen=True)
class WorkflowSnapshot:
    """The workflow's limits and role lists as they were when the request was filed."""

    grant_types: tuple[str, ...] = ()
    max_active_requests: int = 1
    max_floating_duration: int = 0
    max_time_restricted_duration: int = 0
    can_bypass_revoke_workflow: bool = False
    requires_justification: bool = False
    target_roles: tuple[StoredRoleRef, ...] = field(default_factory=tuple)
    requestor_roles: tuple[StoredRoleRef, ...] = field(default_factory=tuple)

    @classmethod
    def of_workflow(cls, workflow: Workflow) -> WorkflowSnapshot:
        return cls(
            grant_types=tuple(workflow.grant_types),
            max_active_requests=workflow.max_active_requests,
            max_floating_duration=workflow.max_floating_duration,
            max_time_restricted_duration=workflow.max_time_restricted_duration,
            can_bypass_revoke_workflow=workflow.can_bypass_revoke_workflow,
            requires_justification=workflow.requires_justification,
            target_roles=tuple(workflow.target_roles),
            requestor_roles=tuple(workflow.requester_roles),
        )

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> WorkflowSnapshot:
        known = {k: v for k, v in stored.items() if k in cls.__dataclass_fields__}
        for key in ("grant_types", "target_roles", "requestor_roles"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def to_json(self) -> dict[str, Any]:
        stored = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in stored.items()}


@dataclass(frozen=True)
class StepSnapshot:
    """A step's name and match rule; its approver entries are rows of their own (RequestApprover)."""

    id: str
    name: str
    match: StepMatch

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> StepSnapshot:
        return cls(id=str(stored.get("id", "")), name=str(stored.get("name", "")), match=StepMatch(stored["match"]))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "match": self.match.value}


class _StoredCopies(Protocol):
    @property
    def workflow_snapshot(self) -> dict[str, Any]: ...

    @property
    def steps(self) -> list[Any]: ...


class ReadsSnapshot:
    """The stored copies as objects, for the request's table row and its record alike."""

    __slots__ = ()

    @property
    def snapshot(self: _StoredCopies) -> WorkflowSnapshot:
        return WorkflowSnapshot.from_json(self.workflow_snapshot)

    @property
    def step_snapshots(self: _StoredCopies) -> list[StepSnapshot]:
        return [StepSnapshot.from_json(s) for s in self.steps]
