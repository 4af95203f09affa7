"""Turn stored role and user ids into PrivX handles with current names, in one query per kind."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.role import service as role_service
from grantflow.role.schemas import RoleHandle, UserHandle
from grantflow.user import service as user_service


class Handles:
    """Collects the ids a response needs, loads them once, then renders handles."""

    def __init__(self) -> None:
        self._role_ids: set[uuid.UUID] = set()
        self._user_ids: set[uuid.UUID] = set()
        self._roles: dict[uuid.UUID, str] = {}
        self._users: dict[uuid.UUID, str] = {}

    def want_roles(self, refs: Iterable[dict[str, Any]]) -> None:
        self._role_ids.update(uuid.UUID(r["id"]) for r in refs)

    def want_role_ids(self, ids: Iterable[uuid.UUID]) -> None:
        self._role_ids.update(ids)

    def want_users(self, ids: Iterable[uuid.UUID | None]) -> None:
        self._user_ids.update(i for i in ids if i is not None)

    async def load(self, session: AsyncSession) -> Handles:
        self._roles = {i: r.name for i, r in (await role_service.roles_by_id(session, self._role_ids)).items()}
        self._users = {i: u.shown_name for i, u in (await user_service.users_by_id(session, self._user_ids)).items()}
        return self

    def role(self, role_id: uuid.UUID, stored_name: str = "") -> RoleHandle:
        name = self._roles.get(role_id)
        return RoleHandle(id=role_id, name=name if name is not None else stored_name, deleted=name is None)

    def role_ref(self, ref: dict[str, Any]) -> RoleHandle:
        return self.role(uuid.UUID(ref["id"]), ref.get("name", ""))

    def roles(self, refs: Iterable[dict[str, Any]]) -> list[RoleHandle]:
        return [self.role_ref(r) for r in refs]

    def user(self, user_id: uuid.UUID, stored_name: str = "") -> UserHandle:
        name = self._users.get(user_id)
        return UserHandle(id=user_id, display_name=name if name is not None else stored_name, deleted=name is None)
