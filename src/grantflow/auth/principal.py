"""The authenticated caller, as its token describes it: what services check scopes and ownership against."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from grantflow.auth.scopes import Scope, satisfies


@dataclass(frozen=True)
class Principal:
    """The caller: a user id, the scopes its token carries, and the login session it belongs to."""

    user_id: uuid.UUID
    scopes: frozenset[str]
    session_id: uuid.UUID | None = None

    def has(self, *scopes: Scope) -> bool:
        return satisfies(self.scopes, scopes)

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes
