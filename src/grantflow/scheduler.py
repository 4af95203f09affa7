"""Time-driven work: expire and remind waiting requests, start, end and warn of grants (decisions.md §4, §5).

Every pass looks at stored times and does what is due, so downtime is caught up on start.

Each job claims its rows with row locks (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's write lock serialises),
so any number of replicas can run the scheduler at once. The clock is the runtime's: tests move it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from grantflow.access_request import service as request_service
from grantflow.db import transaction
from grantflow.engine_settings.service import get_settings
from grantflow.grant import service as grant_service
from grantflow.runtime import Runtime

BATCH = 100
MIN_SLEEP_SECONDS = 0.05
log = logging.getLogger("grantflow.scheduler")


@dataclass
class Scheduler:
    runtime: Runtime

    async def run_due(self) -> int:
        """One pass over every job; returns how many items changed."""
        now = self.runtime.clock.now()
        async with transaction(self.runtime.sessionmaker, writes=True) as session:
            settings = await get_settings(session)
            lifetime = timedelta(hours=settings.request_expiry_hours)
            expired = await request_service.expire_waiting(session, now, lifetime, BATCH)
            reminded = 0
            if settings.reminder_hours:
                after = timedelta(hours=settings.reminder_hours)
                reminded = await request_service.remind_approvers(session, now, after, BATCH)
            notice = timedelta(hours=settings.expiry_notice_hours) if settings.expiry_notice_hours else None
            grants = await grant_service.run_due(session, now, notice, BATCH)
        if expired or reminded or grants.total:
            log.info(
                "%d requests expired, %d reminders; grants: %d started, %d ended, %d notices",
                expired,
                reminded,
                grants.started,
                grants.ended,
                grants.noticed,
            )
        return expired + reminded + grants.total

    async def seconds_to_next(self) -> float:
        """Until the next grant start or end falls due, at most the poll interval (new work may appear any time)."""
        poll = self.runtime.config.scheduler_poll_seconds
        async with transaction(self.runtime.sessionmaker, writes=False) as session:
            due = await grant_service.next_due(session)
        if due is None:
            return poll
        return min(max((due - self.runtime.clock.now()).total_seconds(), MIN_SLEEP_SECONDS), poll)

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until `stop` is set: straight on while a pass was full, else until the next due time."""
        poll = self.runtime.config.scheduler_poll_seconds
        while not stop.is_set():
            try:
                changed = await self.run_due()
                pause = 0.0 if changed >= BATCH else await self.seconds_to_next()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("scheduler paused: %s", exc.__class__.__name__)
                pause = poll
            except Exception:  # a bug must not end scheduling for the life of the process
                log.exception("scheduler pass failed")
                pause = poll
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
