"""Password and client-secret hashing with argon2id, a bounded number at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from grantflow.config import Config
from grantflow.errors import ErrorCode, GrantflowError

T = TypeVar("T")


class HashingBusy(GrantflowError):
    """More hashes waiting than the queue holds: try again in a moment (a burst of logins, most likely)."""

    status_code = 503
    error_code = ErrorCode.MAX_LOAD
    retry_after = 1

    def __init__(self) -> None:
        super().__init__("too many logins at once; try again", headers={"Retry-After": str(self.retry_after)})


class Passwords:
    def __init__(self, time_cost: int, memory_cost_kib: int, concurrency: int = 2, queue: int = 100) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=1)
        # Verified against when the account does not exist, so that unknown names cost the same time.
        self._dummy = self._hasher.hash("grantflow-timing-equaliser")
        # argon2 is CPU and memory bound: more at once than cores only queues in threads and holds the memory.
        self._concurrency = concurrency
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._queue = queue
        self._waiting = 0

    @classmethod
    def from_config(cls, config: Config) -> Passwords:
        return cls(
            config.password_time_cost,
            config.password_memory_cost_kib,
            config.password_hash_concurrency,
            config.password_hash_queue,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored_hash or self._dummy, password)) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    async def _bounded(self, work: Callable[[], T]) -> T:
        if self._waiting >= self._queue:
            raise HashingBusy()
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:  # a semaphore belongs to one event loop
            self._slots = (loop, asyncio.Semaphore(self._concurrency))
        self._waiting += 1
        try:
            async with self._slots[1]:
                return await asyncio.to_thread(work)
        finally:
            self._waiting -= 1

    async def hash_async(self, password: str) -> str:
        """Hash off the event loop, in turn: argon2 is deliberately slow. HashingBusy when the queue is full."""
        return await self._bounded(lambda: self.hash(password))

    async def verify_async(self, stored_hash: str | None, password: str) -> bool:
        """Verify off the event loop, in turn. HashingBusy when the queue is full."""
        return await self._bounded(lambda: self.verify(stored_hash, password))
