"""The delivery worker: claim due outbox messages, send them over one SMTP connection, record each outcome.

Each outcome is committed as soon as the server answers, so a worker killed mid-batch leaves at most the message
in flight to be sent again; the rest were either recorded as sent or are taken over when the lease runs out.
Runs beside the API in `grantflow serve` and alone as `grantflow worker`; any number of them may share a database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from email.errors import MessageError
from email.message import Message

from sqlalchemy.exc import SQLAlchemyError

from grantflow.db import transaction
from grantflow.notification import outbox
from grantflow.notification.models import OutboxMessage, OutboxStatus
from grantflow.notification.sender import DeliveryFailure, SmtpBatch, build_message
from grantflow.notification.smtp import SmtpServer, TokenCache, stored_server
from grantflow.runtime import Runtime

log = logging.getLogger("grantflow.delivery")


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    suppressed: int = 0
    released: int = 0


@dataclass
class DeliveryWorker:
    runtime: Runtime
    worker_id: str = field(default_factory=new_worker_id)
    tokens: TokenCache = field(default_factory=TokenCache)

    async def deliver_due(self) -> BatchReport:
        """One pass: claim a batch of due messages and try each once."""
        runtime, config = self.runtime, self.runtime.config
        async with transaction(runtime.sessionmaker, writes=True) as session:
            settings, server = await stored_server(session, runtime.secret_box)
            batch = await outbox.claim(
                session, self.worker_id, runtime.clock.now(), config.outbox_lease_seconds, config.outbox_batch_size
            )
        report = BatchReport(claimed=len(batch))
        if not batch:
            return report
        if not settings.smtp_server_enabled:
            await self._suppress(batch, report)
            return report
        await self._send_batch(batch, server, settings.smtp_retry_attempts, report)
        return report

    async def _send_batch(
        self, batch: list[OutboxMessage], server: SmtpServer, retries: int, report: BatchReport
    ) -> None:
        config = self.runtime.config
        # Stop starting new messages when half the lease is gone, so no other worker takes over one in flight.
        stop_at = time.monotonic() + config.outbox_lease_seconds / 2
        recording: asyncio.Task[None] | None = None  # the last accepted message's record, still being written
        async with SmtpBatch(
            server, self.tokens, config.smtp_ca_file, config.smtp_timeout_seconds, config.smtp_allowed_host_set
        ) as smtp:
            try:
                for index, message in enumerate(batch):
                    if time.monotonic() > stop_at:
                        await self._release(batch[index:], report)
                        return
                    try:
                        await smtp.send(self._mime(message, server.sender), message.recipient_address, recording)
                    except DeliveryFailure as failure:
                        if recording is not None:
                            await recording
                            recording = None
                        failure.reason = _scrub(failure.reason, server.password)
                        # A connection failure (nothing sent on it) is the outcome of the rest of the batch too.
                        failed = batch[index:] if failure.connection else [message]
                        for unsent in failed:
                            await self._record_failure(unsent, failure, retries, report)
                        if failure.connection:
                            return
                    else:
                        recording = asyncio.create_task(self._record_sent(message, report))
            finally:
                if recording is not None:
                    await recording

    def _mime(self, message: OutboxMessage, sender: str) -> Message:
        try:
            return build_message(message, sender, self.runtime.clock.now())
        except (ValueError, MessageError) as exc:  # an address the email package refuses: retrying won't help
            raise DeliveryFailure(f"the message cannot be built: {exc}", permanent=True) from exc

    async def _record_sent(self, message: OutboxMessage, report: BatchReport) -> None:
        now = self.runtime.clock.now()
        async with transaction(self.runtime.sessionmaker, writes=True) as session:
            recorded = await outbox.mark_sent(session, message.id, self.worker_id, now)
        if recorded:
            report.sent += 1
            self.runtime.metrics.mail_sent.inc()
            self.runtime.metrics.mail_latency.observe(max((now - message.created).total_seconds(), 0.0))
        else:
            log.warning("outbox message %s was sent after its lease ran out", message.id)

    async def _record_failure(
        self, message: OutboxMessage, failure: DeliveryFailure, retries: int, report: BatchReport
    ) -> None:
        async with transaction(self.runtime.sessionmaker, writes=True) as session:
            status = await outbox.mark_failed(
                session,
                message.id,
                self.worker_id,
                self.runtime.clock.now(),
                error=failure.reason,
                permanent=failure.permanent,
                retries=retries,
                first_delay_seconds=self.runtime.config.outbox_retry_seconds,
            )
        if status == OutboxStatus.FAILED:
            report.failed += 1
            self.runtime.metrics.mail_failed.inc()
            log.warning("outbox message %s failed for good: %s", message.id, failure.reason)
        elif status == OutboxStatus.PENDING:
            report.retried += 1
            self.runtime.metrics.mail_retried.inc()
            log.info("outbox message %s will be retried: %s", message.id, failure.reason)

    async def _release(self, messages: list[OutboxMessage], report: BatchReport) -> None:
        async with transaction(self.runtime.sessionmaker, writes=True) as session:
            await outbox.release(session, [m.id for m in messages], self.worker_id, self.runtime.clock.now())
        report.released += len(messages)

    async def _suppress(self, messages: list[OutboxMessage], report: BatchReport) -> None:
        async with transaction(self.runtime.sessionmaker, writes=True) as session:
            await outbox.suppress(session, [m.id for m in messages], self.worker_id, self.runtime.clock.now())
        report.suppressed += len(messages)
        self.runtime.metrics.mail_suppressed.inc(len(messages))

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set: straight on while there is work, else wait a poll interval."""
        poll = self.runtime.config.outbox_poll_seconds
        while not stop.is_set():
            try:
                report = await self.deliver_due()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("outbox delivery paused: %s", exc.__class__.__name__)
                report = BatchReport()
            except Exception:  # a bug must not end delivery for the life of the process
                log.exception("outbox delivery pass failed")
                report = BatchReport()
            if report.claimed == self.runtime.config.outbox_batch_size and not report.released:
                continue  # a full batch: there is probably more
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll)


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text
