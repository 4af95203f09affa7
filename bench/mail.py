"""Outbox delivery throughput against a local SMTP sink, with a bare aiosmtplib sender as the baseline.

    python bench/mail.py [DATABASE_URL] [MESSAGES]

The sink (aiosmtpd, accepting everything) runs in a child process so that it does not share the sender's event
loop. The baseline sends the same messages over one connection with aiosmtplib and nothing else: what the SMTP
conversation alone costs here. grantflow's figure adds claiming, rendering the MIME message and committing each
outcome. Prints messages per second, CPU seconds per message of this process, and the ratio to the baseline.
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from multiprocessing.synchronize import Event as ProcessEvent
from pathlib import Path

import aiosmtplib
import uvloop
from cryptography.fernet import Fernet
from sqlalchemy import delete

from grantflow.config import Config
from grantflow.engine_settings.schemas import SettingsIn
from grantflow.engine_settings.service import update_settings
from grantflow.kit.clock import SystemClock
from grantflow.migrations import runner
from grantflow.notification.delivery import DeliveryWorker
from grantflow.notification.models import OutboxMessage
from grantflow.notification.sender import build_message
from grantflow.runtime import Runtime, open_runtime


def _sink(port: int, ready: ProcessEvent) -> None:
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, _server: object, _session: object, _envelope: object) -> str:
            return "250 OK"

    controller = Controller(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _message(index: int) -> OutboxMessage:
    now = SystemClock().now() - timedelta(seconds=1)
    message_id = uuid.uuid4()
    return OutboxMessage(
        id=message_id,
        dedupe_key=f"bench:{message_id}",
        event="APPROVAL_NEEDED",
        recipient_name=f"Person {index}",
        recipient_address=f"person{index}@example.com",
        subject=f"[grantflow] linux-admins for Person {index} (request {index:08d})",
        text_body="Hello,\n\nAlice asks for linux-admins for Person.\n" * 5,
        html_body="<p>Hello,</p><p>Alice asks for <b>linux-admins</b> for Person.</p>" * 5,
        message_id=f"<{message_id}@example.com>",
        thread_id=f"<request-{index}@example.com>",
        next_attempt_at=now,
        created=now,
        updated=now,
    )


async def _baseline(port: int, messages: list[OutboxMessage]) -> tuple[float, float]:
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await client.connect()
    wall, cpu = time.perf_counter(), time.process_time()
    for message in messages:
        mail = build_message(message, "grantflow@example.com", SystemClock().now())
        await client.send_message(mail, sender="grantflow@example.com", recipients=[message.recipient_address])
    result = time.perf_counter() - wall, time.process_time() - cpu
    await client.quit()
    return result


async def _grantflow(runtime: Runtime, port: int, count: int) -> tuple[float, float]:
    async with runtime.sessionmaker() as session:
        await session.execute(delete(OutboxMessage))
        settings = SettingsIn(
            smtp_server_enabled=True,
            smtp_server="127.0.0.1",
            smtp_server_port=port,
            smtp_server_protocol="PLAIN",
            smtp_sender_address="grantflow@example.com",
        )
        await update_settings(session, runtime.secret_box, settings, runtime.clock.now())
        session.add_all(_message(i) for i in range(count))
        await session.commit()
    worker = DeliveryWorker(runtime)
    wall, cpu = time.perf_counter(), time.process_time()
    sent = 0
    while sent < count:
        sent += (await worker.deliver_due()).sent
    return time.perf_counter() - wall, time.process_time() - cpu


ROUNDS = 5  # this machine's speed drifts by a fifth from minute to minute: medians of interleaved rounds


async def main(config: Config, count: int) -> None:
    port = _free_port()
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=_sink, args=(port, ready), daemon=True)
    sink.start()
    ready.wait(10)
    bare: list[tuple[float, float]] = []
    ours: list[tuple[float, float]] = []
    async with open_runtime(config, SystemClock()) as runtime:
        for _ in range(ROUNDS):
            bare.append(await _baseline(port, [_message(i) for i in range(count)]))
            ours.append(await _grantflow(runtime, port, count))
    backend = "sqlite" if config.is_sqlite else "postgresql"
    sink.terminate()
    print(f"{count} messages, {backend}, batches of 100, one SMTP connection per batch, median of {ROUNDS} rounds")
    print("| sender | msg/s (range) | CPU ms/msg (sender process) |")
    print("|---|---:|---:|")
    for name, runs in (("bare aiosmtplib, one connection", bare), ("grantflow outbox worker", ours)):
        rates = sorted(count / wall for wall, _ in runs)
        cpu = statistics.median(1000 * cpu / count for _, cpu in runs)
        print(f"| {name} | {statistics.median(rates):,.0f} ({rates[0]:,.0f}-{rates[-1]:,.0f}) | {cpu:.2f} |")
    ratio = statistics.median(b[0] / o[0] for b, o in zip(bare, ours, strict=True))
    print(f"ratio grantflow / bare: {ratio:.2f}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as data_dir:
        bench_config = Config(
            data_dir=Path(data_dir),
            database_url=(sys.argv[1] if len(sys.argv) > 1 else "") or None,
            secret_key=Fernet.generate_key().decode(),
            background_workers=False,
            outbox_batch_size=100,
        )
        runner.upgrade(bench_config.resolved_database_url)
        uvloop.run(main(bench_config, int(sys.argv[2]) if len(sys.argv) > 2 else 2000))
