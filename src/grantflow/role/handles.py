"""Turn stored role and user ids into PrivX handles with their current names, in one round trip."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import bindparam, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.kit.prepared import Prepared
from grantflow.kit.schema import RoleHandle, UserHandle
from grantflow.role import service as role_service
from grantflow.role.models import StoredRoleRef
from grantflow.user import service as user_service

_NAMES = Prepared(
    union_all(
        role_service.role_names_query(bindparam("role_ids", expanding=True)),
        user_service.shown_names_query(bindparam("user_ids", expanding=True)),
    )
)


class Handles:
    """Collects the ids a response needs, loads them once, then renders handles."""

    def __init__(self) -> None:
        self._role_ids: set[uuid.UUID] = set()
        self._user_ids: set[uuid.UUID] = set()
        self._roles: dict[uuid.UUID, str] = {}
        self._users: dict[uuid.UUID, str] = {}

    def want_roles(self, refs: Iterable[StoredRoleRef]) -> None:
        self._role_ids.update(uuid.UUID(r["id"]) for r in refs)

    def want_role_ids(self, ids: Iterable[uuid.UUID]) -> None:
        self._role_ids.update(ids)

    def want_users(self, ids: Iterable[uuid.UUID | None]) -> None:
        self._user_ids.update(i for i in ids if i is not None)

    async def load(self, session: AsyncSession) -> Handles:
        """The current names of every wanted role and user, in one round trip."""
        if not self._role_ids and not self._user_ids:
            return self
        rows = await _NAMES.rows(session, role_ids=list(self._role_ids), user_ids=list(self._user_ids))
        for entity_id, name, kind in rows:
            (self._roles if kind == role_service.ROLE_KIND else self._users)[entity_id] = name
        return self

    def role(self, role_id: uuid.UUID, stored_name: str = "") -> RoleHandle:
        name = self._roles.get(role_id)
        return RoleHandle(id=role_id, name=name if name is not None else stored_name, deleted=name is None)

    def role_ref(self, ref: StoredRoleRef) -> RoleHandle:
        return self.role(uuid.UUID(ref["id"]), ref["name"])

    def roles(self, refs: Iterable[StoredRoleRef]) -> list[RoleHandle]:
        return [self.role_ref(r) for r in refs]

    def user(self, user_id: uuid.UUID, stored_name: str = "") -> UserHandle:
        name = self._users.get(user_id)
        return UserHandle(id=user_id, display_name=name if name is not None else stored_name, deleted=name is None)
