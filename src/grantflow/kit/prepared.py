"""Hot-path reads: a Core statement compiled once per dialect, run by the driver on the session's own connection.

`session.execute` builds, caches and compiles the statement, sets up an execution context and a result object,
and (for ORM statements) loads objects into the identity map: about a third of the server's time for a read such
as `GET /requests/{id}`, whose SQL itself takes tens of microseconds (issue 16). A `Prepared` statement is built
once at import, compiled once per dialect, and each call only binds its parameters, hands the SQL to the driver
through the dialect (so SQLite's busy retry and asyncpg's prepared-statement cache and transaction start still
apply) and converts the columns with the same type processors the ORM would use. Rows come back as tuples.

The statement runs in the session's transaction, on the connection the session holds: it sees what the request
wrote before it, and commit and rollback are the session's as always. Writes stay with the ORM (its unit of work,
version checks and flush events keep the approver entries in step); this is for reads on the request path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import CompoundSelect, Select

Row = tuple[Any, ...]
_Processor = Callable[[Any], Any] | None


class _ForDialect:
    """The statement compiled for one dialect, with the result processors of its columns."""

    def __init__(self, statement: Select[Any] | CompoundSelect[Any], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.compiled = compiled
        # The expanded state names the processors of expanded list items only; the others are the binds' own.
        self.bind_processors = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        # A statement without list parameters binds the same names in the same order every time.
        self.fixed: list[tuple[str, Any, _Processor]] | None = None
        if not compiled.post_compile_params and compiled.positiontup is not None:
            self.fixed = [(name, compiled.binds[name], self.bind_processors.get(name)) for name in compiled.positiontup]
        # The columns whose values the driver gives in another form (SQLite's UUID text, datetimes, JSON), by index.
        processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in statement.selected_columns]
        self.converted = [(i, p) for i, p in enumerate(processors) if p is not None]

    def parameters(self, values: dict[str, Any]) -> tuple[str, Sequence[Any] | dict[str, Any]]:
        """The final SQL (lists expanded) and its parameters as the driver takes them."""
        if self.fixed is not None:
            return self.compiled.string, tuple(_bound(name, bind, p, values) for name, bind, p in self.fixed)
        state = self.compiled.construct_expanded_state(values)
        processors, given = {**self.bind_processors, **state.processors}, state.parameters
        bound = {name: processors[name](v) if name in processors else v for name, v in given.items()}
        if state.positiontup is None:
            return state.statement, bound
        return state.statement, tuple(bound[name] for name in state.positiontup)

    def convert(self, rows: Sequence[Any]) -> list[Row]:
        if not self.converted:
            return [tuple(row) for row in rows]
        out = []
        for row in rows:
            values = list(row)
            for i, processor in self.converted:
                values[i] = processor(values[i])
            out.append(tuple(values))
        return out


def _bound(name: str, bind: Any, processor: _Processor, values: dict[str, Any]) -> Any:
    if name in values:
        value = values[name]
    elif bind.required:
        raise KeyError(f"no value for the parameter {name!r}")
    else:
        value = bind.value  # a literal of the statement itself
    return processor(value) if processor is not None else value


class Prepared:
    """A Core SELECT built once (parameters as `bindparam`s), run on the session's connection by the driver."""

    def __init__(self, statement: Select[Any] | CompoundSelect[Any]) -> None:
        self._statement = statement
        self._compiled: dict[type[Dialect], _ForDialect] = {}

    async def rows(self, on: AsyncSession | AsyncConnection, **values: Any) -> list[Row]:
        """Every row, its columns converted as the ORM would (UUIDs, UTC datetimes, JSON).

        On a session: in its transaction. On a bare connection (`/status`): as the driver runs a statement outside
        one (SQLite's autocommit; asyncpg's adapter opens a transaction the pool rolls back on return).
        """
        return await on.run_sync(self._run, values)  # one greenlet switch for connection and statement

    async def first(self, on: AsyncSession | AsyncConnection, **values: Any) -> Row | None:
        found = await self.rows(on, **values)
        return found[0] if found else None

    def _run(self, on: Session | Connection, values: dict[str, Any]) -> list[Row]:
        # A session's connection begins its transaction, as an ORM statement would.
        connection = on.connection() if isinstance(on, Session) else on
        compiled = self._compiled.get(type(connection.dialect))
        if compiled is None:
            compiled = self._compiled[type(connection.dialect)] = _ForDialect(self._statement, connection.dialect)
        return _execute(connection, compiled, values)


def _execute(connection: Connection, compiled: _ForDialect, values: dict[str, Any]) -> list[Row]:
    """In SQLAlchemy's greenlet: the driver's cursor on the connection's DBAPI connection, errors as SQLAlchemy's."""
    dialect = connection.dialect
    sql, parameters = compiled.parameters(values)
    raw = connection.connection
    cursor = raw.cursor()
    if connection.dispatch.before_cursor_execute:  # listeners (the benchmark's statement capture) see it too
        connection.dispatch.before_cursor_execute(connection, cursor, sql, parameters, None, False)
    try:
        dialect.do_execute(cursor, sql, parameters, None)
        rows = cursor.fetchall() if cursor.description is not None else []
    except dialect.loaded_dbapi.Error as error:
        gone = dialect.is_disconnect(error, raw.dbapi_connection, cursor)
        if gone:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql, parameters, error, dialect.loaded_dbapi.Error, connection_invalidated=gone, dialect=dialect
        ) from error
    finally:
        cursor.close()
    return compiled.convert(rows)
