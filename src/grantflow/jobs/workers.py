"""The background work of a `grantflow serve` process: mail delivery and the scheduler, beside the API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from grantflow.jobs.scheduler import Scheduler
from grantflow.notification.delivery import DeliveryWorker
from grantflow.runtime import Runtime


async def run_workers(runtime: Runtime, stop: asyncio.Event) -> None:
    """Deliver mail and run due jobs until `stop` is set (what `grantflow worker` does)."""
    await asyncio.gather(DeliveryWorker(runtime).run(stop), Scheduler(runtime).run(stop))


@contextlib.asynccontextmanager
async def running_in_background(runtime: Runtime, *, enabled: bool) -> AsyncIterator[None]:
    """Run the workers as a task for as long as the context lasts."""
    if not enabled:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(run_workers(runtime, stop), name="grantflow-background")
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=runtime.config.smtp_timeout_seconds)
