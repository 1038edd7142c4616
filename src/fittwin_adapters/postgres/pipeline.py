"""A lean pipeline on psycopg's libpq connection: one round trip for a unit of work's statements.

:meth:`PostgresUnitOfWork.pipeline` sends its statements here. psycopg's own pipeline mode
(``Connection.pipeline()``, a cursor per statement) spends about 0.3 ms of client CPU on a
pipeline of four small statements; sent on the libpq connection (``Connection.pgconn``) the
same pipeline costs about 60 µs. What this module keeps of psycopg: its adapters (a
:class:`~psycopg.adapt.Transformer` of the connection dumps the parameters and loads the rows,
with the JSON codec and every type psycopg knows), its error classes
(:func:`psycopg.errors.error_from_result`), and its libpq wrapper.

Each statement is prepared once per connection, under a name of this module's own, and run by
that name afterwards. A name counts as prepared only once the server has answered its
``Parse`` (a pipeline that fails ahead of the ``Parse`` prepares nothing), so a failed or
refused pipeline never leaves a name the server does not know. psycopg's automatic preparing
is switched off on the connections this module runs on (``prepare_threshold = None``): its
``ROLLBACK`` would otherwise send ``DEALLOCATE ALL`` and drop these statements too.

Waiting is done with ``poll`` on the socket, the GIL released, so the store's watchdog can cut
a call off by shutting the socket down (the wait then ends in an
:class:`~psycopg.OperationalError`, as psycopg's own waits do)."""

from __future__ import annotations

import itertools
import re
import select
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ConnStatus, DiagnosticField, ExecStatus, Format

Rows = list[dict[str, Any]]
"""The rows of one statement, as column-name dicts (none for a statement returning none)."""

_PLACEHOLDER = re.compile(r"%\(([^)]*)\)s|%%")
_NAMES = itertools.count(1)  # prepared statement names, unique in the process
_FORGET = frozenset({"26000", "0A000"})  # unknown prepared statement; a cached plan gone stale


class Statement:
    """A statement in psycopg's ``%(name)s`` form, turned into libpq's ``$n`` form once."""

    __slots__ = ("names", "sql")

    def __init__(self, pyformat: str) -> None:
        order: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%"
            return f"${order.setdefault(name, len(order) + 1)}"

        self.sql: bytes = _PLACEHOLDER.sub(number, pyformat).encode()
        self.names: tuple[str, ...] = tuple(order)

    def values(self, params: Mapping[str, Any]) -> list[Any]:
        """The parameters in ``$n`` order."""
        return [params[name] for name in self.names]


class _Connection:
    """What this module keeps per psycopg connection: its transformer, the names of the
    statements prepared on it, and the column names of their rows."""

    __slots__ = ("columns", "prepared", "prepares", "transformer")

    def __init__(self, driver: psycopg.Connection[Any]) -> None:
        driver.prepare_threshold = None  # psycopg's automatic preparing off (see the module)
        self.transformer = Transformer(driver)
        self.prepared: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self.columns: dict[bytes, tuple[str, ...]] = {}
        # A connection psycopg has already prepared statements on would lose ours to its first
        # ROLLBACK's DEALLOCATE ALL: on such a connection statements run unnamed.
        self.prepares = not getattr(getattr(driver, "_prepared", None), "_names", None)

    def forget(self) -> None:
        self.prepared.clear()
        self.columns.clear()


_CONNECTIONS: weakref.WeakKeyDictionary[Any, _Connection] = weakref.WeakKeyDictionary()


class PipelineFailed(Exception):
    """A statement of the pipeline failed: ``error`` is psycopg's error for it, ``rows`` holds
    the rows of the statements that ran before it (``failed`` of them)."""

    def __init__(self, error: psycopg.Error, rows: list[Rows]) -> None:
        super().__init__(str(type(error).__name__))
        self.error = error
        self.rows = rows

    @property
    def failed(self) -> int:
        """The index of the statement that failed (the count of statements when the
        transaction's ``COMMIT`` failed, or what followed the last statement)."""
        return len(self.rows)


def run(
    driver: psycopg.Connection[Any],
    statements: Sequence[tuple[Statement, Mapping[str, Any]]],
    *,
    before: Sequence[bytes | tuple[Statement, Mapping[str, Any]]] = (),
    after: Sequence[bytes] = (),
    prepare: bool = True,
) -> list[Rows]:
    """Run ``before`` (e.g. ``BEGIN`` and the settings: commands without parameters, or
    statements whose rows are not wanted), then ``statements`` (with their parameters), then
    ``after`` (e.g. ``COMMIT``) in one round trip; the rows of each of ``statements``.

    Parameters are dumped before anything is sent: a value psycopg cannot send (a NUL in
    text, a string the connection's encoding cannot hold) raises psycopg's error (a
    :class:`~psycopg.DataError`, a :class:`UnicodeEncodeError`) with nothing sent. A statement
    the server refuses raises :class:`PipelineFailed`; PostgreSQL skips what follows it up to
    the end of the round trip. A connection that breaks raises
    :class:`~psycopg.OperationalError`. With ``prepare=False`` (behind a pooler that does
    not keep prepared statements) every statement is sent unnamed, parsed each time."""
    state = _CONNECTIONS.get(driver)
    if state is None:
        state = _CONNECTIONS[driver] = _Connection(driver)
    transformer = state.transformer
    first = [command if isinstance(command, bytes) else _dump(transformer, *command) for command in before]
    dumped = [_dump(transformer, statement, params) for statement, params in statements]
    pgconn = driver.pgconn
    # What each result answers: None for a command of before/after, the statement's index for
    # its execution, and (sql, types, name) for a Parse.
    expected: list[Any] = []
    pgconn.enter_pipeline_mode()
    synced = False
    parsing: dict[tuple[bytes, tuple[int, ...]], bytes] = {}

    prepares = prepare and state.prepares

    def send(sql: bytes, out: Any, types: tuple[int, ...], formats: list[Format], answers: Any) -> None:
        if prepares:
            key = (sql, types)
            name = state.prepared.get(key) or parsing.get(key)
            if name is None:  # its Parse goes ahead of its first run, in this round trip
                name = parsing[key] = b"_ft_%d" % next(_NAMES)
                pgconn.send_prepare(name, sql, types)
                expected.append((sql, types, name))
            pgconn.send_query_prepared(name, out, formats, Format.TEXT)
        else:
            pgconn.send_query_params(sql, out, types, formats, Format.TEXT)
        expected.append(answers)

    try:
        for command in first:
            if isinstance(command, bytes):
                pgconn.send_query_params(command, None)
                expected.append(None)
            else:
                send(*command, None)
        for index, command in enumerate(dumped):
            send(*command, index)
        for command in after:
            pgconn.send_query_params(command, None)
            expected.append(None)
        pgconn.pipeline_sync()
        synced = True
        _flush(pgconn)
        return _read(driver, state, expected, [command[0] for command in dumped])
    except PipelineFailed:
        raise  # read to its end
    except BaseException:
        _drain(pgconn, synced)
        raise
    finally:
        _leave(driver)


def _dump(
    transformer: Any, statement: Statement, params: Mapping[str, Any]
) -> tuple[bytes, Any, tuple[int, ...], list[Format]]:
    """A statement's SQL with its parameters dumped: values, their type OIDs and formats."""
    values = statement.values(params)
    out = transformer.dump_sequence(values, [PyFormat.AUTO] * len(values))
    return statement.sql, out, tuple(transformer.types or ()), list(transformer.formats or ())


def _leave(driver: psycopg.Connection[Any]) -> None:
    """Leave pipeline mode; a connection that cannot (answers left unread after a failure
    while reading) is closed, so the pool gives it up."""
    pgconn = driver.pgconn
    if pgconn.status != ConnStatus.OK:
        return
    try:
        pgconn.exit_pipeline_mode()
    except psycopg.Error:
        driver.close()


def _drain(pgconn: Any, synced: bool) -> None:
    """After a failure halfway through a round trip: read what is left of it, up to its Sync
    (sent now if it was not yet), so the connection leaves pipeline mode clean."""
    if pgconn.status != ConnStatus.OK:
        return
    try:
        if not synced:
            pgconn.pipeline_sync()
            _flush(pgconn)
        while True:
            result = _result(pgconn)
            if result is not None and result.status == ExecStatus.PIPELINE_SYNC:
                return
    except psycopg.Error:
        return


def _flush(pgconn: Any) -> None:
    """Send what libpq holds, reading what the server answers meanwhile (libpq's advice for
    a non-blocking connection in pipeline mode)."""
    while pgconn.flush():
        ready = _wait(pgconn.socket, select.POLLIN | select.POLLOUT)
        if ready & select.POLLIN:
            pgconn.consume_input()


def _result(pgconn: Any) -> Any:
    """The next result, waiting for it without holding the GIL."""
    while pgconn.is_busy():
        _wait(pgconn.socket, select.POLLIN)
        pgconn.consume_input()
    return pgconn.get_result()


def _wait(fileno: int, events: int) -> int:
    poller = select.poll()
    poller.register(fileno, events)
    ready = 0
    for _, revents in poller.poll():
        ready |= revents
    if ready & (select.POLLERR | select.POLLHUP | select.POLLNVAL) and not ready & select.POLLIN:
        raise psycopg.OperationalError("the connection to the server was lost")
    return ready


def _read(
    driver: psycopg.Connection[Any], state: _Connection, expected: Sequence[Any], sqls: Sequence[bytes]
) -> list[Rows]:
    pgconn = driver.pgconn
    transformer = state.transformer
    rows: list[Rows] = [[] for _ in sqls]
    done = 0
    error: psycopg.Error | None = None
    for answers in expected:
        result = _result(pgconn)
        if result is None:  # pragma: no cover - libpq answers every command
            raise psycopg.OperationalError("the server answered fewer commands than were sent")
        while _result(pgconn) is not None:  # the command's end marker (None) after its result
            pass
        status = result.status
        if status == ExecStatus.FATAL_ERROR:
            if error is None:
                error = _error(driver, result)
                if error.sqlstate in _FORGET:
                    state.forget()
            continue
        if status == ExecStatus.PIPELINE_ABORTED or error is not None:
            continue
        if isinstance(answers, tuple):  # a Parse: the name is now prepared
            sql, types, name = answers
            state.prepared[(sql, types)] = name
        elif answers is not None:
            if status == ExecStatus.TUPLES_OK:
                rows[answers] = _rows(state, transformer, sqls[answers], result)
            done = answers + 1
    sync = _result(pgconn)
    if sync is None or sync.status != ExecStatus.PIPELINE_SYNC:  # pragma: no cover
        raise psycopg.OperationalError("the server's answer did not end where the round trip did")
    if error is not None:
        raise PipelineFailed(error, rows[:done])
    return rows


def _rows(state: _Connection, transformer: Any, sql: bytes, result: Any) -> Rows:
    count = result.ntuples
    if not count:
        return []
    names = state.columns.get(sql)
    if names is None or len(names) != result.nfields:
        names = tuple((result.fname(i) or b"").decode() for i in range(result.nfields))
        state.columns[sql] = names
    transformer.set_pgresult(result)
    return [dict(zip(names, values, strict=True)) for values in transformer.load_rows(0, count, tuple)]


def _error(driver: psycopg.Connection[Any], result: Any) -> psycopg.Error:
    """psycopg's error for a failed command (an :class:`~psycopg.OperationalError` when the
    server gave no SQLSTATE: the connection broke)."""
    encoding = driver.info.encoding
    if not result.error_field(DiagnosticField.SQLSTATE):
        return psycopg.OperationalError(result.get_error_message(encoding) or "the connection broke")
    return pg_errors.error_from_result(result, encoding=encoding)


__all__ = ["PipelineFailed", "Rows", "Statement", "run"]
