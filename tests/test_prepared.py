"""kit/prepared.py on both backends: the values the ORM would give, lists, the session's transaction, errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import JSON, Boolean, Column, Integer, MetaData, String, Table, bindparam, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from grantflow.db import UTCDateTime
from grantflow.kit.prepared import MAX_SHAPES, Prepared
from grantflow.runtime import Runtime

_metadata = MetaData()
THINGS = Table(
    "prepared_things",
    _metadata,
    Column("id", Uuid, primary_key=True),
    Column("at", UTCDateTime, nullable=True),
    Column("facts", JSON, nullable=True),
    Column("flag", Boolean, nullable=False),
    Column("name", String(50), nullable=False),
    Column("rank", Integer, nullable=False),
)
BY_ID = Prepared(select(THINGS).where(THINGS.c.id == bindparam("id")))
AMONG = Prepared(select(THINGS.c.name).where(THINGS.c.id.in_(bindparam("ids", expanding=True))).order_by("name"))
FLAGGED = Prepared(
    select(THINGS.c.name).where(
        THINGS.c.flag.is_(True), THINGS.c.rank >= bindparam("rank"), THINGS.c.name.not_in(["off", "hidden"])
    )
)
MISSING_TABLE = Prepared(select(Table("no_such_table", MetaData(), Column("id", Integer))))

WHEN = datetime(2026, 12, 1, 16, 30, 15, 123456, tzinfo=UTC)


async def _things(session: AsyncSession, *rows: dict[str, object]) -> None:
    connection = await session.connection()
    await connection.run_sync(_metadata.create_all)
    await session.execute(insert(THINGS), list(rows))


def _thing(name: str, **values: object) -> dict[str, object]:
    return {"id": uuid.uuid4(), "at": None, "facts": None, "flag": False, "name": name, "rank": 0, **values}


async def test_a_row_comes_back_with_the_values_and_types_the_orm_gives(session: AsyncSession) -> None:
    thing = _thing("one", at=WHEN, facts={"steps": [1, 2], "name": "x"}, flag=True, rank=3)
    await _things(session, thing)
    orm = (await session.execute(select(THINGS).where(THINGS.c.id == thing["id"]))).one()
    row = await BY_ID.first(session, id=thing["id"])
    assert row == tuple(orm)
    assert row == (thing["id"], WHEN, {"steps": [1, 2], "name": "x"}, True, "one", 3)
    assert isinstance(row[0], uuid.UUID)
    assert row[1].tzinfo is not None


async def test_missing_values_and_no_row(session: AsyncSession) -> None:
    thing = _thing("bare")
    await _things(session, thing)
    assert await BY_ID.first(session, id=thing["id"]) == (thing["id"], None, None, False, "bare", 0)
    assert await BY_ID.first(session, id=uuid.uuid4()) is None


async def test_a_list_parameter_matches_exactly_its_items_and_an_empty_list_matches_nothing(
    session: AsyncSession,
) -> None:
    things = [_thing(name) for name in ("a", "b", "c", "d")]
    await _things(session, *things)
    assert await AMONG.rows(session, ids=[things[3]["id"], things[1]["id"]]) == [("b",), ("d",)]
    assert await AMONG.rows(session, ids=[things[0]["id"]]) == [("a",)]
    # The SQL for two items is built once; other items of the same length must still be the ones bound.
    assert await AMONG.rows(session, ids=[things[0]["id"], things[2]["id"]]) == [("a",), ("c",)]
    assert await AMONG.rows(session, ids=[]) == []
    # Beyond the SQL it keeps, a list of a length not seen before is expanded anew, with the same answer.
    more_than_kept = [uuid.uuid4() for _ in range(MAX_SHAPES + 1)]
    for n in range(3, MAX_SHAPES + 2):
        await AMONG.rows(session, ids=more_than_kept[:n])
    assert await AMONG.rows(session, ids=[*more_than_kept, things[2]["id"]]) == [("c",)]


async def test_literals_of_the_statement_and_given_values_are_both_bound(session: AsyncSession) -> None:
    await _things(
        session,
        _thing("low", flag=True, rank=1),
        _thing("high", flag=True, rank=5),
        _thing("off", rank=9),
        _thing("hidden", flag=True, rank=7),
    )
    assert await FLAGGED.rows(session, rank=2) == [("high",)]
    with pytest.raises(KeyError, match="rank"):
        await FLAGGED.rows(session)


async def test_it_reads_in_the_sessions_transaction(session: AsyncSession) -> None:
    """What the request wrote before its read is seen; what it rolled back is gone."""
    thing = _thing("unsaved")
    await _things(session, thing)  # not committed
    assert await BY_ID.first(session, id=thing["id"]) is not None
    await session.rollback()
    with pytest.raises(DBAPIError):  # the table itself was created in the rolled-back transaction on both
        await BY_ID.first(session, id=thing["id"])


async def test_a_failing_statement_is_sqlalchemys_error_and_the_session_goes_on_after_rollback(
    session: AsyncSession,
) -> None:
    """The API maps SQLAlchemy's errors (a DBAPIError) to PrivX error bodies; a raw driver error would be a 500."""
    with pytest.raises(DBAPIError) as failure:
        await MISSING_TABLE.rows(session)
    assert "no_such_table" in str(failure.value)
    await session.rollback()
    thing = _thing("after")
    await _things(session, thing)
    assert await BY_ID.first(session, id=thing["id"]) is not None


async def test_on_a_bare_connection_it_reads_what_is_committed_and_leaves_the_connection_usable(
    session: AsyncSession, runtime: Runtime
) -> None:
    """How /status asks the database, without a session: the pooled connection is fine for the next request."""
    thing = _thing("committed")
    await _things(session, thing)
    await session.commit()
    for _ in range(3):  # the same pooled connection, again and again
        async with runtime.engine.connect() as connection:
            assert await BY_ID.first(connection, id=thing["id"]) == (thing["id"], None, None, False, "committed", 0)
    assert await BY_ID.first(session, id=thing["id"]) is not None
