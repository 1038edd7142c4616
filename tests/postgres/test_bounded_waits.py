"""Every wait is bounded: a stuck network, a full pool, a held lock, an idle transaction, killed
backends and refused connections turn into FitTwin errors within the configured time."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from fittwin_adapters.connect import connect
from fittwin_adapters.crypto import LocalKeyRing
from fittwin_adapters.memory import FakePayments
from fittwin_adapters.postgres import PostgresStore
from fittwin_adapters.postgres.watchdog import Watchdog
from fittwin_core.domain import ConfigurationError, StoreUnavailable, TransientConflict
from fittwin_core.testing.world import World, seed_world
from tests.support.postgres import sql_engine

postgres = pytest.mark.postgres


class Relay:
    """A TCP relay on 127.0.0.1 to the PostgreSQL server, like a proxy or load balancer in
    the path. :meth:`freeze` makes it stop forwarding without closing anything: it accepts
    and holds connections and reads nothing more, so the kernel keeps acknowledging what the
    client sends and no TCP-level time-out fires."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = False
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self._forwarding.clear()

    def thaw(self) -> None:
        self._forwarding.set()

    def close(self) -> None:
        self._closed = True
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        while not self._closed:
            if not self._forwarding.wait(0.05):
                continue
            try:
                ready, _, _ = select.select([source], [], [], 0.05)
                if not ready or not self._forwarding.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def relay(postgres_url: URL) -> Iterator[Relay]:
    proxy = Relay(postgres_url.host or "127.0.0.1", postgres_url.port or 5432)
    yield proxy
    proxy.close()


@pytest.fixture
def world(postgres_store: PostgresStore) -> World:
    return seed_world(postgres_store)


def _through(relay: Relay, url: URL) -> URL:
    return url.set(host="127.0.0.1", port=relay.port)


# ---------------------------------------------------------------------------- the watchdog


def test_the_watchdog_cuts_a_blocked_read_off_at_its_deadline_and_leaves_a_quick_one_alone() -> None:
    watchdog = Watchdog()
    quiet, peer = socket.socketpair()
    try:
        with watchdog.deadline(quiet.fileno(), 5.0) as quick:
            peer.sendall(b"x")
            assert quiet.recv(1) == b"x"
        assert not quick.expired
        started = time.monotonic()
        with watchdog.deadline(quiet.fileno(), 0.3) as slow:
            assert quiet.recv(1) == b""  # nothing was sent: only the shutdown ends the wait
        assert slow.expired
        assert 0.25 <= time.monotonic() - started < 2
    finally:
        quiet.close()
        peer.close()


def test_an_unbounded_deadline_never_fires() -> None:
    watchdog = Watchdog()
    for fileno, seconds in ((3, None), (-1, 0.01)):  # time-outs off; no socket to watch
        with watchdog.deadline(fileno, seconds) as unbounded:
            time.sleep(0.05)
        assert not unbounded.expired


# ---------------------------------------------------------------------------- a stuck network


@postgres
@pytest.mark.parametrize("step", ["statement", "commit"])
def test_a_call_through_a_proxy_that_stops_forwarding_fails_within_the_bound(
    relay: Relay, postgres_url: URL, world: World, step: str
) -> None:
    store = PostgresStore(_through(relay, postgres_url), statement_timeout_ms=300, connect_timeout=2)
    assert store.call_bound == pytest.approx(2.3)
    try:
        with store.unit_of_work() as uow:
            assert uow.brands.count() == 1
            relay.freeze()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match=r"did not answer within 2\.3 s"):
                uow.brands.count() if step == "statement" else uow.commit()
            assert time.monotonic() - started < 2.3 + 1.5
        started = time.monotonic()  # a new unit of work: the ping, then a new connection, time out
        with pytest.raises(StoreUnavailable, match="connect_timeout"), store.unit_of_work() as uow:
            uow.brands.count()
        assert time.monotonic() - started < 2 * 2 + 1.5
        relay.thaw()
        with store.unit_of_work() as uow:
            assert uow.brands.count() == 1
    finally:
        relay.thaw()
        store.close()


# ---------------------------------------------------------------------------- pool, locks, idle


@postgres
def test_a_full_pool_is_store_unavailable_within_pool_timeout(postgres_url: URL) -> None:
    store = PostgresStore(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.3)
    try:
        with store.unit_of_work() as holder:
            holder.brands.count()
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="pool_timeout"), store.unit_of_work() as waiter:
                waiter.brands.count()
            assert 0.25 <= time.monotonic() - started < 1.5
        with store.unit_of_work() as uow:  # freed again
            assert uow.brands.count() == 0
    finally:
        store.close()


@postgres
def test_a_held_lock_is_a_transient_conflict_within_lock_timeout(postgres_url: URL, world: World) -> None:
    store = PostgresStore(postgres_url, lock_timeout_ms=200, statement_timeout_ms=10_000)
    try:
        with store.unit_of_work() as holder:
            holder.brands.lock(world["brands"].id)
            started = time.monotonic()
            with store.unit_of_work() as waiter, pytest.raises(TransientConflict, match="lock not available"):
                waiter.brands.lock(world["brands"].id)
            assert time.monotonic() - started < 1.5
    finally:
        store.close()


@postgres
def test_a_transaction_left_idle_is_ended_by_the_server(postgres_url: URL) -> None:
    store = PostgresStore(postgres_url, idle_in_transaction_timeout_ms=300)
    try:
        with store.unit_of_work() as uow:
            uow.brands.count()
            time.sleep(1.0)
            with pytest.raises(StoreUnavailable):
                uow.brands.count()
        with store.unit_of_work() as uow:
            assert uow.brands.count() == 0
    finally:
        store.close()


def _kill_idle_backends(url: URL) -> int:
    engine = sql_engine(url)
    try:
        with engine.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'fittwin' AND state = 'idle'"
                )
            ).scalar_one()
        time.sleep(0.2)  # let the backends go
        return int(killed)
    finally:
        engine.dispose()


@postgres
@pytest.mark.parametrize("pre_ping", [True, False])
def test_after_idle_backends_are_killed_the_next_call_succeeds_thanks_to_the_pre_ping(
    postgres_url: URL, pre_ping: bool
) -> None:
    store = PostgresStore(postgres_url, pool_pre_ping=pre_ping)
    try:
        with store.unit_of_work() as uow:
            uow.brands.count()
        assert _kill_idle_backends(postgres_url) >= 1
        with store.unit_of_work() as uow:
            if pre_ping:
                assert uow.brands.count() == 0
            else:  # without it the dead connection is handed out, and the call fails
                with pytest.raises(StoreUnavailable):
                    uow.brands.count()
    finally:
        store.close()


# ---------------------------------------------------------------------------- settings and engines


def _show(conn: sa.Connection, *names: str) -> list[str]:
    return [str(conn.exec_driver_sql(f"SHOW {name}").scalar_one()) for name in names]


SETTINGS = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "TimeZone",
    "search_path",
)


@postgres
def test_fittwin_transactions_carry_the_defaults(postgres_store: PostgresStore) -> None:
    with postgres_store.unit_of_work() as uow:
        assert _show(uow.connection(), *SETTINGS) == ["15s", "3s", "1min", "UTC", "fittwin, public"]


@postgres
def test_on_a_hosts_engine_the_settings_are_transaction_local_and_the_pool_stays_the_hosts(
    postgres_url: URL,
) -> None:
    host = sa.create_engine(postgres_url, pool_size=2)
    try:
        with pytest.raises(ConfigurationError, match="pool_size"):
            PostgresStore(host, pool_size=3)
        ft = connect(
            engine=host, payments=FakePayments(), keyring=LocalKeyRing.generate(), lock_timeout_ms=500
        )
        store: Any = ft.context.store
        with store.unit_of_work() as uow:
            assert _show(uow.connection(), *SETTINGS)[:2] == ["15s", "500ms"]
            assert _show(uow.connection(), "search_path") == ["fittwin, public"]
        with host.connect() as conn:  # the host's own sessions keep the server's defaults
            assert _show(conn, "statement_timeout", "lock_timeout", "search_path") == [
                "0",
                "0",
                '"$user", public',
            ]
        ft.close()
        with host.connect() as conn:  # not disposed: the host's pool goes on
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        host.dispose()


# ---------------------------------------------------------------------------- refused connections


@postgres
def test_unknown_database_unknown_role_and_server_down_are_told_apart(postgres_url: URL) -> None:
    cases: list[tuple[URL, type[Exception], str]] = [
        (
            postgres_url.set(database="no_such_database_x"),
            ConfigurationError,
            'no database "no_such_database_x"',
        ),
        (postgres_url.set(username="no_such_role_x"), ConfigurationError, 'no role "no_such_role_x"'),
        (postgres_url.set(host="127.0.0.1", port=9), StoreUnavailable, "connection refused"),
    ]
    for url, error, message in cases:
        with pytest.raises(error, match=message):
            PostgresStore(url)
        with pytest.raises(error, match=message):
            connect(
                url.render_as_string(hide_password=False),
                payments=FakePayments(),
                keyring=LocalKeyRing.generate(),
            )
