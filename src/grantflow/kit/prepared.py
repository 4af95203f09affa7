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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import CompoundSelect, Select

Row = tuple[Any, ...]
MAX_SHAPES = 256  # SQL kept per statement and dialect, one per combination of list lengths
_Processor = Callable[[Any], Any] | None


class _ForDialect:
    """The statement compiled for one dialect, its SQL per list length, and the result processors of its columns."""

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
        self.lists = [(name, bind) for bind, name in compiled.bind_names.items() if bind.expanding]
        # Expanding the lists is most of the cost of binding, and its result depends on their lengths alone.
        self.shapes: dict[tuple[int, ...], _Shape] = {}
        # The columns whose values the driver gives in another form (SQLite's UUID text, datetimes, JSON), by index.
        processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in statement.selected_columns]
        self.converted = [(i, p) for i, p in enumerate(processors) if p is not None]

    def parameters(self, values: dict[str, Any]) -> tuple[str, Sequence[Any] | dict[str, Any]]:
        """The final SQL (lists expanded) and its parameters as the driver takes them."""
        lengths = tuple([len(_given(name, bind, values)) for name, bind in self.lists])
        shape = self.shapes.get(lengths)
        if shape is None:
            expanded = {name: n for (name, _), n in zip(self.lists, lengths, strict=True)}
            shape = _Shape(self.compiled, self.bind_processors, expanded)
            if len(self.shapes) < MAX_SHAPES:  # the lengths callers send are few; a flood of others is not kept
                self.shapes[lengths] = shape
        return shape.statement, shape.parameters(values)

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


class _Slot:
    """A stand-in value: after expansion it tells which parameter (and which item of a list) a placeholder takes."""

    __slots__ = ("index", "name")

    def __init__(self, name: str, index: int | None) -> None:
        self.name, self.index = name, index


class _Shape:
    """The SQL for one set of list lengths, and where each of its placeholders takes its value from."""

    def __init__(self, compiled: SQLCompiler, processors: Mapping[str, _Processor], lengths: dict[str, int]) -> None:
        stand_ins: dict[str, Any] = {name: _Slot(name, None) for name in compiled.bind_names.values()}
        stand_ins.update({name: [_Slot(name, i) for i in range(n)] for name, n in lengths.items()})
        state = compiled.construct_expanded_state(stand_ins)
        self.statement = state.statement
        self.positional = state.positiontup is not None
        names = state.positiontup if state.positiontup is not None else list(state.parameters)
        self.slots: list[tuple[str, _Slot, Any, _Processor]] = []
        for name in names:
            slot = state.parameters[name]
            processor = state.processors.get(name) or processors.get(name)
            self.slots.append((name, slot, compiled.binds[slot.name], processor))

    def parameters(self, values: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        if self.positional:
            return tuple([_value(slot, bind, values, processor) for _, slot, bind, processor in self.slots])
        return {name: _value(slot, bind, values, processor) for name, slot, bind, processor in self.slots}


def _value(slot: _Slot, bind: Any, values: dict[str, Any], processor: _Processor) -> Any:
    value = _given(slot.name, bind, values)
    if slot.index is not None:
        value = value[slot.index]
    return processor(value) if processor is not None else value


def _given(name: str, bind: Any, values: dict[str, Any]) -> Any:
    if name in values:
        return values[name]
    if bind.required:
        raise KeyError(f"no value for the parameter {name!r}")
    return bind.value  # a literal of the statement itself (a list, for `in_([...])`)


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
