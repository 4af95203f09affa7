"""Bring a database to the code's schema and seed it; what `serve` and `db upgrade` do before anything else."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from grantflow.bootstrap import BootstrapResult, bootstrap, write_generated_credentials
from grantflow.config import Config
from grantflow.db import create_engine, make_sessionmaker, transaction
from grantflow.kit.clock import Clock, SystemClock
from grantflow.kit.passwords import Passwords
from grantflow.kit.secretbox import load_secret_box
from grantflow.migrations import runner

BOOTSTRAP_LOCK_ID = 0x67666C6F77


class DatabaseTooNew(RuntimeError):
    pass


def prepare(config: Config, clock: Clock | None = None) -> BootstrapResult:
    """Migrate to the newest schema, then create what a fresh installation needs. Safe to run on every start."""
    # The data directory holds the SQLite file (password hashes) and the secret key: owner only.
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    url = config.resolved_database_url
    _create_private_sqlite_file(url)
    current = asyncio.run(_current_revision(url))
    if current is not None and current not in runner.known_revisions(url):
        raise DatabaseTooNew(
            f"the database is at schema revision {current}, which this grantflow does not know; "
            "it was written by a newer release: upgrade grantflow instead"
        )
    runner.upgrade(url)
    result = asyncio.run(_bootstrap(config, clock or SystemClock()))
    write_generated_credentials(config, result)
    return result


def _create_private_sqlite_file(url: str) -> None:
    """A new SQLite file is created owner-only (its -wal and -shm files follow its mode), whatever the umask and
    however the data directory was made."""
    database = make_url(url).database
    if not url.startswith("sqlite") or not database or database == ":memory:":
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


async def _current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            try:
                revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
            except DBAPIError:
                return None
            return None if revision is None else str(revision)
    finally:
        await engine.dispose()


async def _bootstrap(config: Config, clock: Clock) -> BootstrapResult:
    async with admin_session(config) as session:
        passwords = Passwords.from_config(config)
        return await bootstrap(session, config, passwords, load_secret_box(config), clock)


@asynccontextmanager
async def admin_session(config: Config) -> AsyncIterator[AsyncSession]:
    """One committed transaction for CLI work, serialised against other writers and replicas."""
    engine = create_engine(config.resolved_database_url)
    try:
        async with transaction(make_sessionmaker(engine), writes=True) as session:
            if engine.dialect.name == "postgresql":
                await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": BOOTSTRAP_LOCK_ID})
            yield session
    finally:
        await engine.dispose()
