"""Fixtures: a real database per backend (SQLite file and a throwaway PostgreSQL database), a frozen clock,
the app over httpx, and helpers to get tokens from the real token endpoint."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
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
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.app import create_app
from grantflow.config import Config
from grantflow.kit.clock import FrozenClock
from grantflow.prepare import prepare
from grantflow.runtime import Runtime

if TYPE_CHECKING:
    from tests.factories import World

BACKENDS = [b for b in os.environ.get("GRANTFLOW_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
PG_SERVER = os.environ.get("GRANTFLOW_TEST_PG", "postgresql://root@127.0.0.1:5432/test")
ADMIN_PASSWORD = "admin-password-for-tests"
CLIENT_SECRET = "oauth-client-secret-for-tests"
SECRET_KEY = Fernet.generate_key().decode()
# Tests that talk to a PostgreSQL server directly run only when PostgreSQL is among the chosen backends.
collect_ignore = [] if "postgresql" in BACKENDS else ["test_db.py"]
START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def _pg(sql: str) -> None:
    connection = await asyncpg.connect(PG_SERVER)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def _test_config(url: str, data_dir: Path) -> Config:
    return Config(
        data_dir=data_dir,
        database_url=url,
        admin_password=ADMIN_PASSWORD,
        oauth_client_secret=CLIENT_SECRET,
        secret_key=SECRET_KEY,
        # The cheapest argon2id cost: tests hash many passwords, production uses the RFC 9106 default.
        password_time_cost=1,
        password_memory_cost_kib=8,
        # Tests run background work explicitly (deliver_due, run_due) with a clock they move.
        background_workers=False,
        # A test process makes hundreds of apps: freezing each one's objects for good would keep them all.
        gc_gen0_threshold=0,
    )


def _pg_url(name: str) -> str:
    return f"{PG_SERVER.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


@pytest.fixture(scope="session", params=BACKENDS)
def template_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrated and bootstrapped once per backend, as `grantflow serve` leaves a first start; every test gets a
    copy (a copied SQLite file, a PostgreSQL `CREATE DATABASE ... TEMPLATE`)."""
    data_dir = tmp_path_factory.mktemp("template")
    if request.param == "sqlite":
        path = data_dir / "template.db"
        prepare(_test_config(f"sqlite:///{path}", data_dir), FrozenClock(START))
        yield str(path)
        return
    name = f"grantflow_template_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    try:
        prepare(_test_config(_pg_url(name), data_dir), FrozenClock(START))
        yield name
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def database_url(template_database: str, tmp_path: Path) -> Iterator[str]:
    """This test's own database, a copy of the bootstrapped template: nothing of another test is in it."""
    if template_database.endswith(".db"):
        copy = tmp_path / "grantflow.db"
        shutil.copyfile(template_database, copy)
        yield f"sqlite:///{copy}"
        return
    name = f"grantflow_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Config:
    return _test_config(database_url, tmp_path)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def prepared(config: Config) -> Config:
    """A database as `grantflow serve` leaves it after its first start (a copy of the template)."""
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
    """Start `grantflow worker` processes (mail delivery and scheduler) on the test database, with short polls;
    they are stopped at the end of the test.

    The outbox lease is 2 s unless said, so that a dead worker's claim is taken over within a test. A worker stops
    starting sends when half its lease is gone, but a send already started may outlast the lease on a loaded
    machine and be taken over and sent again (at least once, by design): tests in which no worker dies and that
    count each mail exactly once give a lease that no send outlasts."""
    import subprocess
    import sys

    from tests.processes import fresh_env

    workers: list[subprocess.Popen[bytes]] = []

    def start(wait_until_started: bool = True, lease_seconds: int = 2) -> subprocess.Popen[bytes]:
        env = fresh_env(
            prepared.data_dir,
            GRANTFLOW_DATABASE_URL=prepared.resolved_database_url,
            GRANTFLOW_SECRET_KEY=SECRET_KEY,
            GRANTFLOW_OUTBOX_LEASE_SECONDS=str(lease_seconds),
            GRANTFLOW_OUTBOX_BATCH_SIZE="10",
            GRANTFLOW_OUTBOX_POLL_SECONDS="0.2",
            GRANTFLOW_SCHEDULER_POLL_SECONDS="0.2",
        )
        command = [sys.executable, "-m", "grantflow", "worker"]
        log = prepared.data_dir / f"worker-{len(workers)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=sink)
        workers.append(process)
        # Until it logs that it started, SIGTERM would end it before its handler is in place (exit -15).
        deadline = time.monotonic() + 60
        while wait_until_started and process.poll() is None and time.monotonic() < deadline:
            if b"worker started" in log.read_bytes():
                break
            time.sleep(0.05)
        return process

    yield start
    for process in workers:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture
def served(prepared: Config) -> Iterator[str]:
    """`grantflow serve` as a process on the test's database, mail delivery included, on a free port: its base URL."""
    with serve_process(prepared) as base:
        yield base


@contextmanager
def serve_process(prepared: Config, **env: str) -> Iterator[str]:
    """`grantflow serve` on the test's database with extra GRANTFLOW_* settings; yields its base URL."""
    import subprocess
    import sys

    from tests.processes import free_port, fresh_env

    port = free_port()
    environment = fresh_env(
        prepared.data_dir,
        GRANTFLOW_DATABASE_URL=prepared.resolved_database_url,
        GRANTFLOW_SECRET_KEY=SECRET_KEY,
        GRANTFLOW_PORT=str(port),
        GRANTFLOW_OUTBOX_POLL_SECONDS="0.2",
        **env,
    )
    log = prepared.data_dir / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "grantflow", "serve"], env=environment, stdout=sink, stderr=sink
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"grantflow serve exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/workflow-engine/api/v1/status", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "grantflow serve did not answer within 60 s"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
