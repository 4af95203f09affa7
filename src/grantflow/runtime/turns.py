"""Turns: periodic work that one replica does per interval, whichever replica comes first.

One row per kind of work records when it last ran. Claiming a turn moves that time forward in one
`INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`, atomic on PostgreSQL across replicas and under SQLite's
write lock, so of any number of replicas asking at once exactly one gets the turn.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from grantflow.db import Base


class JobTurn(Base):
    """When a periodic job last ran, on any replica."""

    __tablename__ = "job_turns"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_run: Mapped[datetime]


async def claim_turn(session: AsyncSession, name: str, interval: timedelta, now: datetime) -> bool:
    """True when this caller is the one to run `name` now (it last ran `interval` ago or never)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    claim = (
        insert(JobTurn)
        .values(name=name, last_run=now)
        .on_conflict_do_update(
            index_elements=[JobTurn.name], set_={"last_run": now}, where=JobTurn.last_run <= now - interval
        )
        .returning(JobTurn.name)
    )
    return (await session.execute(claim)).first() is not None
