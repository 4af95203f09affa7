"""Fixtures: a real database per backend (SQLite file and a throwaway PostgreSQL database), a frozen clock,
the app over httpx, and helpers to get tokens from the real token endpoint."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.app import create_app
from grantflow.config import Config
from grantflow.kit.clock import FrozenClock
from grantflow.migrations import runner
from grantflow.models import Base
from grantflow.prepare import prepare
from grantflow.runtime import Runtime

if TYPE_CHECKING:
    from tests.factories import World

BACKENDS = [b for b in os.environ.get("GRANTFLOW_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
PG_SERVER = os.environ.get("GRANTFLOW_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
ADMIN_PASSWORD = "admin-password-for-tests"
CLIENT_SECRET = "oauth-client-secret-for-tests"
SECRET_KEY = Fernet.generate_key().decode()
START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def _pg(sql: str) -> None:
    connection = await asyncpg.connect(PG_SERVER)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database for the whole session, one per backend; tests empty it between them."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'grantflow.db'}"
        runner.upgrade(url)
        yield url
        return
    name = f"grantflow_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    base = PG_SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    try:
        runner.upgrade(url)
        yield url
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Config:
    return Config(
        data_dir=tmp_path,
        database_url=database_url,
        admin_password=ADMIN_PASSWORD,
        oauth_client_secret=CLIENT_SECRET,
        secret_key=SECRET_KEY,
        # The cheapest argon2id cost: tests hash many passwords, production uses the RFC 9106 default.
        password_time_cost=1,
        password_memory_cost_kib=8,
        # Tests run background work explicitly (deliver_due, run_due) with a clock they move.
        background_workers=False,
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


def _empty_database(url: str) -> None:
    async def run() -> None:
        from grantflow.db import create_engine

        engine = create_engine(url)
        async with engine.begin() as connection:
            tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
            if connection.dialect.name == "postgresql":
                await connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
            else:
                for table in reversed(Base.metadata.sorted_tables):
                    await connection.execute(table.delete())
        await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def prepared(config: Config, clock: FrozenClock) -> Config:
    """An empty database, bootstrapped as `grantflow serve` does on first start."""
    _empty_database(config.resolved_database_url)
    prepare(config, clock)
    return config


@pytest.fixture
async def app(prepared: Config, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(prepared, clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def runtime(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://grantflow.test") as http:
        yield http


@pytest.fixture
async def session(runtime: Runtime) -> AsyncIterator[AsyncSession]:
    """A session for test set-up; commit what you add."""
    async with runtime.sessionmaker() as db:
        yield db


@pytest.fixture
async def world(client: httpx.AsyncClient, session: AsyncSession, runtime: Runtime) -> World:
    from tests.factories import build_world

    return await build_world(client, session, runtime)


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so an unclosed connection is reported against the test that leaked it."""
    yield
    import gc

    gc.collect()


@contextmanager
def _serve_in_thread(app: FastAPI, ssl_certfile: str | None = None, ssl_keyfile: str | None = None) -> Iterator[int]:
    """Run the app under uvicorn in a thread on a free loopback port; yields the port."""
    import socket
    import threading

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def live_server(prepared: Config, clock: FrozenClock) -> Iterator[str]:
    """grantflow under uvicorn on a free loopback port, for behaviour that depends on a real socket."""
    with _serve_in_thread(create_app(prepared, clock)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def tls_server(prepared: Config, clock: FrozenClock, tmp_path: Path) -> Iterator[tuple[str, int, str]]:
    """grantflow over HTTPS on a free port: (host name, port, CA PEM), certificate made by `grantflow tls init`."""
    from grantflow.tls import init_tls

    files = init_tls(tmp_path / "tls", ["localhost"], datetime.now(UTC))
    app = create_app(prepared, clock)
    with _serve_in_thread(app, ssl_certfile=str(files.server_cert), ssl_keyfile=str(files.server_key)) as port:
        yield "localhost", port, files.ca_cert.read_text()


@pytest.fixture
def start_worker(prepared: Config) -> Iterator[Any]:
    """Start `grantflow worker` processes (mail delivery and scheduler) on the test database, with short leases
    and polls; they are stopped at the end of the test."""
    import subprocess
    import sys

    from tests.processes import fresh_env

    workers: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        env = fresh_env(
            prepared.data_dir,
            GRANTFLOW_DATABASE_URL=prepared.resolved_database_url,
            GRANTFLOW_SECRET_KEY=SECRET_KEY,
            GRANTFLOW_OUTBOX_LEASE_SECONDS="2",
            GRANTFLOW_OUTBOX_BATCH_SIZE="10",
            GRANTFLOW_OUTBOX_POLL_SECONDS="0.2",
            GRANTFLOW_SCHEDULER_POLL_SECONDS="0.2",
        )
        command = [sys.executable, "-m", "grantflow", "worker"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        workers.append(process)
        return process

    yield start
    for process in workers:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
