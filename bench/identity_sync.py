"""The LDAP sync at scale: a real slapd with N people in 500 groups (50 of them nested in 10 more), synced into a
fresh grantflow database with 20 roles mapped to groups.

    python bench/identity_sync.py sqlite 1000 10000
    python bench/identity_sync.py postgresql 1000 10000

For each size: the first sync (every user made), a second one (nothing changed) and, as the baseline run in
the same process, reading the directory alone (ldap.all_users, which each sync does first). Prints seconds,
SQL statements per sync, and each sync's time as a multiple of the directory read.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import ldap3
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.identity.conftest import ldap_source
from tests.identity.directory import (
    ROOT_DN,
    ROOT_PASSWORD,
    Directory,
    group_dn,
    person_dn,
    running_directory,
)

from grantflow.config import Config
from grantflow.db import transaction
from grantflow.identity import directory, ldap
from grantflow.identity import service as identity_service
from grantflow.identity.schemas import SourceIn
from grantflow.kit.clock import SystemClock
from grantflow.prepare import prepare
from grantflow.role import service as role_service
from grantflow.runtime import open_runtime

GROUP_COUNT, NESTED, PARENTS, MAPPED_ROLES = 500, 50, 10, 20
PG = "postgresql://root@127.0.0.1:5432"


def _seed(server: Directory, people: int) -> None:
    """People first (groups name them), then groups of ~people*2/500 members, then the nesting parents."""
    connection = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=server.ldap_port), ROOT_DN, ROOT_PASSWORD, auto_bind=True
    )
    for i in range(people):
        connection.add(
            person_dn(f"u{i}"), ["inetOrgPerson"], {"cn": f"User {i}", "sn": str(i), "mail": f"u{i}@corp.example"}
        )
    members: dict[int, list[str]] = {g: [] for g in range(GROUP_COUNT)}
    for i in range(people):
        members[i % GROUP_COUNT].append(person_dn(f"u{i}"))
        members[(i * 7 + 3) % GROUP_COUNT].append(person_dn(f"u{i}"))
    for g, names in members.items():
        connection.add(group_dn(f"g{g}"), ["groupOfNames"], {"member": names or [ROOT_DN]})
    for p in range(PARENTS):
        nested = [group_dn(f"g{g}") for g in range(p, NESTED, PARENTS)]
        connection.add(group_dn(f"parent{p}"), ["groupOfNames"], {"member": nested})
    connection.unbind()


def _source(server: Directory) -> SourceIn:
    return SourceIn.model_validate({**ldap_source(server), "name": "bench directory"})


async def _database(backend: str, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}"
    name = f"grantflow_bench_sync_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return f"{PG.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


def _count_statements(engine: AsyncEngine) -> list[int]:
    counter = [0]

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        counter[0] += 1

    return counter


async def _sync_twice(config: Config, server: Directory, people: int) -> dict[str, float]:
    async with open_runtime(config, SystemClock()) as runtime:
        async with transaction(runtime.sessionmaker, writes=True) as session:
            source = await identity_service.create_source(session, _source(server), runtime.secret_box)
            for r in range(MAPPED_ROLES):
                group = group_dn(f"parent{r}") if r < PARENTS else group_dn(f"g{r * 17 % GROUP_COUNT}")
                rule = {"type": "RULE", "source": str(source.id), "search_string": group}
                await role_service.create_role(
                    session, f"mapped-{r}", source_rules={"type": "GROUP", "match": "ANY", "rules": [rule]}
                )
        settings, secret = identity_service.ldap_connection_of(source, runtime.secret_box)
        started = time.perf_counter()
        read = await asyncio.to_thread(ldap.all_users, settings, secret)
        figures = {"directory read s": time.perf_counter() - started}
        assert len(read) == people
        statements = _count_statements(runtime.sessionmaker.kw["bind"])
        for name in ("first sync", "second sync"):
            statements[0] = 0
            started = time.perf_counter()
            result = await directory.sync_source(runtime, source.id)
            figures[f"{name} s"] = time.perf_counter() - started
            figures[f"{name} statements"] = statements[0]
            assert result.users == people, result
        return figures


def _measure(backend: str, people: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        with running_directory(folder / "slapd") as server:
            _seed(server, people)
            url = asyncio.run(_database(backend, folder))
            config = Config(
                data_dir=folder,
                database_url=url,
                background_workers=False,
                password_time_cost=1,
                password_memory_cost_kib=8,
            )
            prepare(config, SystemClock())
            try:
                return asyncio.run(_sync_twice(config, server, people))
            finally:
                if backend == "postgresql":
                    asyncio.run(_drop(url))


async def _drop(url: str) -> None:
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


def main() -> None:
    backend, sizes = sys.argv[1], [int(n) for n in sys.argv[2:]] or [1000, 10000]
    print(
        f"{'backend':10} {'people':>7} {'read s':>7} {'first s':>8} {'x read':>7} {'stmts':>7} "
        f"{'second s':>9} {'x read':>7} {'stmts':>7}"
    )
    for people in sizes:
        f = _measure(backend, people)
        read = f["directory read s"]
        print(
            f"{backend:10} {people:>7} {read:>7.2f} {f['first sync s']:>8.2f} {f['first sync s'] / read:>7.1f} "
            f"{int(f['first sync statements']):>7} {f['second sync s']:>9.2f} {f['second sync s'] / read:>7.1f} "
            f"{int(f['second sync statements']):>7}"
        )


if __name__ == "__main__":
    main()
