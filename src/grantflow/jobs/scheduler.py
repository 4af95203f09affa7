"""Time-driven work: expire and remind waiting requests, start, end and warn of grants (decisions.md §4, §5).

Every pass looks at stored times and does what is due, so downtime is caught up on start.

Each job claims its rows with row locks (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's write lock serialises),
so any number of replicas can run the scheduler at once. The clock is the runtime's: tests move it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.access_request import jobs as request_jobs
from grantflow.access_request.models import AccessRequest
from grantflow.db import transaction
from grantflow.engine_settings.service import get_settings
from grantflow.grant import service as grant_service
from grantflow.identity import directory
from grantflow.jobs import retention
from grantflow.notification import compose as notify
from grantflow.runtime import Runtime
from grantflow.web import sessions as web_sessions

BATCH = 100
MIN_SLEEP_SECONDS = 0.05
log = logging.getLogger("grantflow.scheduler")


@dataclass
class Scheduler:
    runtime: Runtime

    async def run_due(self) -> int:
        """One pass over every job, each in its own transaction; returns how many items changed."""
        now = self.runtime.clock.now()
        expired = await self._in_transaction(self._expire, now)
        reminded = await self._in_transaction(self._remind, now)
        grants = await self._in_transaction(self._grants, now)
        await self._in_transaction(self._web_sessions, now)
        await retention.run_due(self.runtime)  # not counted: removing old rows is no change anyone waits for
        await directory.run_due(self.runtime)  # directory syncs, each source at its own interval
        if expired or reminded or grants:
            log.info("%d requests expired, %d reminders, %d grant changes", expired, reminded, grants)
        return expired + reminded + grants

    async def _in_transaction(self, job: Callable[[AsyncSession, datetime], Awaitable[int]], now: datetime) -> int:
        async with transaction(self.runtime.sessionmaker, writes=True) as session:
            return await job(session, now)

    @staticmethod
    async def _expire(session: AsyncSession, now: datetime) -> int:
        settings = await get_settings(session)
        return await request_jobs.expire_waiting(session, now, timedelta(hours=settings.request_expiry_hours), BATCH)

    @staticmethod
    async def _remind(session: AsyncSession, now: datetime) -> int:
        settings = await get_settings(session)
        if not settings.reminder_hours:
            return 0
        return await request_jobs.remind_approvers(session, now, timedelta(hours=settings.reminder_hours), BATCH)

    async def _web_sessions(self, session: AsyncSession, now: datetime) -> int:
        """Sign-in sessions that can no longer be used are removed (they would answer "signed out" anyway)."""
        return await web_sessions.end_lapsed(session, self.runtime.config, now)

    @staticmethod
    async def _grants(session: AsyncSession, now: datetime) -> int:
        """Start, end and warn of grants; the people of each ended or ending grant's request are mailed."""
        settings = await get_settings(session)
        notice = timedelta(hours=settings.expiry_notice_hours) if settings.expiry_notice_hours else None
        work = await grant_service.run_due(session, now, notice, BATCH)
        for grant in work.ended:
            if request := await session.get(AccessRequest, grant.request_id):
                await notify.in_background(session, request, now, notify.grant_ended(session, request, now))
        for grant in work.ending:
            if request := await session.get(AccessRequest, grant.request_id):
                ends_at = grant.ends_at or now
                await notify.in_background(session, request, now, notify.grant_ending(session, request, ends_at, now))
        return work.total

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
