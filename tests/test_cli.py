"""The ``fittwin`` command: every user mistake is one line on stderr and a non-zero exit, never
a traceback; the database commands do what they say."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fittwin_adapters.cli import main
from tests.support.postgres import TestDatabases, sql_engine

pg = pytest.mark.postgres


def _head() -> str:
    from fittwin_adapters.postgres.migrate import history

    return history()[0][0]


HEAD = _head()
"""The newest revision FitTwin ships (``db upgrade`` goes there)."""


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``fittwin argv`` in-process: (exit status, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as done:  # argparse's own exits (--help, --version, usage errors)
        code = done.code if isinstance(done.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def places(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], str]]:
    """Resolves ``{name}`` in a command line to a database URL (or file) made for the test."""
    for variable in ("FITTWIN_DATABASE_URL", "FITTWIN_KEYRING", "FITTWIN_KEYRING_FILE"):
        monkeypatch.delenv(variable, raising=False)
    made: dict[str, str] = {}
    dropped: list[Any] = []

    def database(*, migrated: bool) -> Any:
        databases: TestDatabases = request.getfixturevalue("postgres_databases")
        url = databases.new_database(migrated=migrated)
        dropped.append(url)
        return url

    def make(name: str) -> str:
        if name in made:
            return made[name]
        if name == "keyring_file":
            path = tmp_path / "ring.json"
            path.write_text("an existing key ring\n")
            value = str(path)
        elif name == "server_down":
            value = "postgresql+psycopg://root@127.0.0.1:9/fittwin"
        else:
            url = database(migrated=name in ("migrated", "holding_data", "no_role"))
            if name == "no_database":
                url = url.set(database=f"{url.database}_missing")
            elif name == "no_role":
                url = url.set(username="fittwin_no_such_role")
            elif name == "clash":
                with sql_engine(url, schema="public").begin() as conn:
                    conn.exec_driver_sql("CREATE TABLE public.products (sku text PRIMARY KEY)")
            elif name == "holding_data":
                from fittwin_adapters.postgres import PostgresStore
                from fittwin_core.testing.world import seed_world

                with PostgresStore(url) as store:
                    seed_world(store)
            value = url.render_as_string(hide_password=False)
        made[name] = value
        return value

    def resolve(arg: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: make(m[1]), arg)

    yield resolve
    if dropped:
        databases: TestDatabases = request.getfixturevalue("postgres_databases")
        for url in dropped:
            databases.drop(url)


# (what the user did wrong, the command line, what the one line must say, exit status)
MISTAKES = [
    pytest.param(
        ["db", "upgrade", "--url", "{migrated}", "--revision", "9999"], "unknown revision '9999'", 2, marks=pg
    ),
    pytest.param(
        ["db", "downgrade", "nonsense", "--yes", "--url", "{migrated}"],
        "unknown revision 'nonsense'",
        2,
        marks=pg,
    ),
    pytest.param(["db", "downgrade", "base", "--yes", "--url", "{empty}"], "(it is at base)", 2, marks=pg),
    pytest.param(["db", "downgrade", "-1", "--url", "{migrated}"], "add --yes", 2, marks=pg),
    pytest.param(["db", "downgrade", "--url", "{migrated}"], "required: revision", 2),
    pytest.param(["jobs", "release-rewards", "--url", "memory://", "--today", "2026-13-45"], "not a date", 2),
    pytest.param(
        ["keys", "generate", "--output", "/nonexistent/k.json"], "cannot write /nonexistent/k.json", 2
    ),
    pytest.param(["keys", "generate", "--output", "{keyring_file}"], "pass --force", 2),
    pytest.param(
        ["db", "upgrade", "--url", "{clash}", "--schema", "public"], 'holds "products"', 2, marks=pg
    ),
    pytest.param(["db", "upgrade", "--url", "{no_database}"], "(SQLSTATE 3D000)", 2, marks=pg),
    pytest.param(["db", "current", "--url", "{no_role}"], "(SQLSTATE 28000)", 2, marks=pg),
    pytest.param(["jobs", "purge", "--url", "{server_down}"], "connection refused", 1),
    pytest.param(["demo", "--url", "{holding_data}"], "refuses a database that holds", 2, marks=pg),
    pytest.param(["jobs", "close-returns", "--url", "{migrated}"], "needs a key ring", 2, marks=pg),
    pytest.param(["db", "upgrade"], "FITTWIN_DATABASE_URL", 2),
    pytest.param(["db", "upgrade", "--url", "mysql://root@localhost/db"], "postgresql://", 2),
    pytest.param(
        ["db", "upgrade", "--url", "{empty}", "--schema", "Not-A-Schema"], "schema must be", 2, marks=pg
    ),
    pytest.param(["db", "partitions", "--url", "{migrated}", "--ahead", "many"], "whole number", 2, marks=pg),
    pytest.param(["nonsense"], "invalid choice", 2),
]


@pytest.mark.parametrize(("argv", "says", "status"), MISTAKES)
def test_a_mistake_is_one_line_on_stderr_and_a_non_zero_exit(
    argv: list[str], says: str, status: int, places: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run([places(arg) for arg in argv], capsys)
    assert code == status, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert says in err


def test_debug_shows_the_traceback_as_well(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["--debug", "keys", "generate", "--output", "/nonexistent/k.json"], capsys)
    assert code == 2
    assert "Traceback" in err and err.rstrip().endswith("No such file or directory")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and re.fullmatch(r"fittwin \S+\n", out)


def test_keys_generate_never_replaces_a_ring_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ring.json"
    assert run(["keys", "generate", "--output", str(path)], capsys)[0] == 0
    first = path.read_text()
    assert json.loads(first)["version"] == 1 and path.stat().st_mode & 0o777 == 0o600
    assert run(["keys", "generate", "--output", str(path)], capsys)[0] == 2
    assert path.read_text() == first
    assert run(["keys", "generate", "--output", str(path), "--force"], capsys)[0] == 0
    assert path.read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ring.json"]  # no temporary file left


def test_the_former_store_flag_still_works(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["jobs", "release-rewards", "--store", "memory://", "--today", "2026-05-01"], capsys)
    assert code == 0 and "on or before 2026-05-01" in out


@pg
def test_db_upgrade_current_history_and_downgrade(
    places: Callable[[str], str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = places("{empty}")
    monkeypatch.setenv("FITTWIN_DATABASE_URL", url)  # read by the command when --url is left out
    assert run(["db", "current"], capsys)[1] == "schema fittwin: not migrated (run fittwin db upgrade)\n"
    assert run(["db", "upgrade"], capsys)[1] == f"schema fittwin at {HEAD}\n"
    assert run(["db", "current"], capsys)[1] == f"schema fittwin: {HEAD} (head)\n"
    history = run(["db", "history"], capsys)[1]
    assert history.splitlines()[0].startswith(f"{HEAD}  ") and history.splitlines()[0].endswith("(current)")
    assert run(["db", "upgrade", "--schema", "second"], capsys)[1] == f"schema second at {HEAD}\n"
    code, out, _ = run(["db", "downgrade", "base", "--yes"], capsys)
    assert (code, out) == (0, "schema fittwin at base\n")
    assert run(["db", "current", "--schema", "second"], capsys)[1] == f"schema second: {HEAD} (head)\n"


@pg
def test_db_upgrade_creates_and_grants_the_roles(
    places: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    url = places("{empty}")
    db = make_url(url).database
    app, analytics = f"{db}_app", f"{db}_ro"
    try:
        code, out, err = run(
            [
                "db",
                "upgrade",
                "--url",
                url,
                "--app-role",
                app,
                "--analytics-role",
                analytics,
                "--create-roles",
            ],
            capsys,
        )
        assert (code, out.splitlines()[-1]) == (
            0,
            f"schema fittwin: privileges granted to {app} and {analytics}",
        )
        code, out, err = run(["db", "grant", "--url", url, "--app-role", app], capsys)  # again: harmless
        assert code == 0, err
        engine = sql_engine(make_url(url).set(username=app))
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT count(*) FROM brands")).scalar_one()
            with pytest.raises(sa.exc.ProgrammingError):
                conn.execute(sa.text("DELETE FROM event_logs"))
        engine.dispose()
        code, _, err = run(["db", "grant", "--url", url, "--app-role", f"{db}_missing"], capsys)
        assert code != 0 and "no role" in err
    finally:
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            for role in (app, analytics):
                if conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
                    conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
                    conn.execute(sa.text(f'DROP ROLE "{role}"'))
        admin.dispose()


@pg
def test_the_demo_runs_on_an_empty_database_once(
    places: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = places("{empty}")
    code, out, _ = run(["demo", "--url", url], capsys)
    assert code == 0 and "\nSummary\n" in out
    code, _, err = run(["demo", "--url", url], capsys)
    assert code == 2 and "refuses a database that holds some (schema fittwin: brands, user_profiles)" in err
