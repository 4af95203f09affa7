"""Scheduler lag: how long after a grant's start and end times the scheduler records them.

    python bench/scheduler.py [DATABASE_URL] [GRANTS] [WORKERS] [POLL_SECONDS]

Creates GRANTS approved time-restricted grants whose windows open between 6 s and 16 s from now (after the workers
have started) and close 5 s later, starts WORKERS `grantflow worker` processes with
GRANTFLOW_SCHEDULER_POLL_SECONDS, waits until every grant has ended and prints the lag (recorded time minus due
time) of the starts and of the ends: median, 99th percentile and worst. A membership counts from its start to its
end whatever this lag (its row carries the window); the lag is how late the audit events, the removal of the row
and the mails come.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select

from grantflow.access_request.models import AccessRequest, RequestStatus
from grantflow.audit.service import SYSTEM
from grantflow.config import Config
from grantflow.grant import service as grant_service
from grantflow.grant.models import Grant
from grantflow.grant.terms import GrantOrder
from grantflow.kit.clock import SystemClock
from grantflow.prepare import admin_session, prepare
from grantflow.role import service as role_service
from grantflow.runtime import open_runtime
from grantflow.user import service as user_service


async def _seed(config: Config, count: int) -> None:
    async with admin_session(config) as session:
        role = await role_service.create_role(session, f"bench-{uuid.uuid4().hex[:6]}")
        user = await user_service.get_by_username(session, "admin")
        assert user is not None
        now = SystemClock().now()
        for index in range(count):
            start = now + timedelta(seconds=6) + timedelta(seconds=10) * index / count
            request = AccessRequest(
                id=uuid.uuid4(),
                workflow_id=uuid.uuid4(),
                name="bench",
                requester_id=user.id,
                requester_name="admin",
                target_user_id=user.id,
                target_user_name="admin",
                requested_role_id=role.id,
                requested_role_name=role.name,
                action="GRANT",
                status=RequestStatus.APPROVED,
                grant_type="TIME_RESTRICTED",
                grant_start=start,
                grant_end=start + timedelta(seconds=5),
                author=user.id,
                updated_by=user.id,
                created=now,
                updated=now,
            )
            session.add(request)
            order = GrantOrder(request.id, request.target_user_id, request.requested_role_id, request.terms)
            await grant_service.open_grant(session, order, now, SYSTEM)
        await session.commit()


async def _lags(config: Config, count: int) -> tuple[list[float], list[float]]:
    async with open_runtime(config, SystemClock()) as runtime:
        while True:
            async with runtime.sessionmaker() as session:
                grants = list(await session.scalars(select(Grant)))
            if sum(g.state == "ENDED" for g in grants) == count:
                break
            await asyncio.sleep(0.5)
    starts = [(g.started_at - g.starts_at).total_seconds() for g in grants if g.started_at and g.starts_at]
    ends = [(g.ended_at - g.ends_at).total_seconds() for g in grants if g.ended_at and g.ends_at]
    return starts, ends


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:.0f} | {p99 * 1000:.0f} | {ordered[-1] * 1000:.0f}"


def main(url: str | None, count: int, workers: int, poll: float) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        config = Config(
            data_dir=Path(data_dir),
            database_url=url,
            secret_key=Fernet.generate_key().decode(),
            admin_password="bench-admin-password",
            background_workers=False,
        )
        prepare(config)
        asyncio.run(_seed(config, count))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTFLOW_")}
        env.update(
            GRANTFLOW_DATA_DIR=data_dir,
            GRANTFLOW_DATABASE_URL=config.resolved_database_url,
            GRANTFLOW_SECRET_KEY=config.secret_key.get_secret_value() if config.secret_key else "",
            GRANTFLOW_SCHEDULER_POLL_SECONDS=str(poll),
        )
        command = [sys.executable, "-m", "grantflow", "worker"]
        processes = [
            subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(workers)
        ]
        started = time.monotonic()
        try:
            starts, ends = asyncio.run(_lags(config, count))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    backend = "sqlite" if config.is_sqlite else "postgresql"
    print(
        f"{count} grants, {backend}, {workers} worker(s), poll {poll:g} s, done in {time.monotonic() - started:.1f} s"
    )
    print("| transition | median ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|")
    print(f"| start recorded after its time | {_summary(starts)} |")
    print(f"| end recorded after its time | {_summary(ends)} |")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        (args[0] if args else "") or None,
        int(args[1]) if len(args) > 1 else 1000,
        int(args[2]) if len(args) > 2 else 1,
        float(args[3]) if len(args) > 3 else 1.0,
    )
