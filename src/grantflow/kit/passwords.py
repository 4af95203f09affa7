"""Password and client-secret hashing with argon2id."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from grantflow.config import Config


class Passwords:
    def __init__(self, time_cost: int, memory_cost_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=1)
        # Verified against when the account does not exist, so that unknown names cost the same time.
        self._dummy = self._hasher.hash("grantflow-timing-equaliser")

    @classmethod
    def from_config(cls, config: Config) -> Passwords:
        return cls(config.password_time_cost, config.password_memory_cost_kib)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored_hash or self._dummy, password)) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    async def hash_async(self, password: str) -> str:
        """Hash off the event loop: argon2 is deliberately slow."""
        return await asyncio.to_thread(self.hash, password)

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        return await asyncio.to_thread(self.verify, stored_hash, password)
