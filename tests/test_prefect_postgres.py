"""PostgreSQL for several workers (docs/scaling.md): a throw-away cluster on a free 127.0.0.1 port holds
the Prefect server's database (`scripts/prefect-server` pointed at it through
PREFECT_API_DATABASE_CONNECTION_URL, one retrain run against that server) and a shared Optuna study."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrain.store.layout import production_version
from tests import shared_study_worker
from tests.prefect_stack import PROJECT_ROOT, _free_port, _start, _stop, _subprocess_env, _wait_for_health

DATABASE = "prefect"
STUDIES = "optuna"
ROLE = "retrain"


def _postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else the newest of Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root (CI), run its commands as the `postgres` user."""
    if os.geteuid() != 0:
        return command
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: PostgreSQL cannot be started as root")
    return ["runuser", "-u", "postgres", "--", *command]


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def postgres_cluster(bin_dir: Path) -> Iterator[int]:
    """A fresh cluster with databases `prefect` and `optuna` owned by role `retrain` (trust on 127.0.0.1);
    its port."""
    root = Path(tempfile.mkdtemp(prefix="retrain-pg-"))  # not pytest's tmp_path: that is private to root
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", _free_port()
    try:
        _run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "-E", "UTF8"]))
        options = f"-h 127.0.0.1 -p {port} -k {root}"
        _run(
            _as_owner(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(root / "pg.log"),
                    "-w",
                    "start",
                ]
            )
        )
        try:
            for database in (DATABASE, STUDIES):
                _query(bin_dir, port, f"CREATE DATABASE {database}", database="postgres")
            yield port
        finally:
            _run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _psql(bin_dir: Path) -> str:
    return str(bin_dir / "psql") if (bin_dir / "psql").exists() else shutil.which("psql") or "psql"


def _query(bin_dir: Path, port: int, sql: str, database: str = DATABASE) -> str:
    return _run(
        [_psql(bin_dir), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, "-d", database, "-tA", "-c", sql]
    )


@pytest.fixture(scope="module")
def postgres() -> Iterator[tuple[Path, int]]:
    """The binaries' folder and the port of a cluster shared by this module's tests."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin")
    with postgres_cluster(bin_dir) as port:
        yield bin_dir, port


def test_a_shared_study_runs_on_postgresql_with_heartbeats(
    postgres: tuple[Path, int], tmp_path: Path
) -> None:
    bin_dir, pg_port = postgres
    url = f"postgresql+psycopg://{ROLE}@127.0.0.1:{pg_port}/{STUDIES}"
    (tmp_path / "go").touch()
    shared_study_worker.main("main", url, 3, tmp_path / "ready", tmp_path / "go")

    rows = _query(bin_dir, pg_port, "SELECT state, count(*) FROM trials GROUP BY state", database=STUDIES)
    assert rows.split() == ["COMPLETE|3"], rows
    assert _query(bin_dir, pg_port, "SELECT count(*) FROM trial_heartbeats", database=STUDIES).strip() != "0"


def test_the_retrain_flow_runs_against_a_prefect_server_on_postgresql(
    postgres: tuple[Path, int], tmp_path: Path
) -> None:
    bin_dir, pg_port = postgres
    api_port = _free_port()
    env = _subprocess_env(tmp_path / "prefect-home", f"http://127.0.0.1:{api_port}/api")
    database_url = f"postgresql+asyncpg://{ROLE}@127.0.0.1:{pg_port}/{DATABASE}"
    server = _start(
        "prefect-server",
        {**env, "PORT": str(api_port), "PREFECT_API_DATABASE_CONNECTION_URL": database_url},
        tmp_path / "server.log",
        "--no-ui",
    )
    try:
        _wait_for_health(env["PREFECT_API_URL"], server, tmp_path / "server.log")
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "retrain.cli",
                "run",
                "--source",
                "demo",
                "--days",
                "40",
                "--trials",
                "1",
            ]
            + ["--model", "lightgbm", "--models-dir", str(tmp_path / "models")],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        _stop(server)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "decision: promoted" in run.stdout, run.stdout[-2000:]
    assert production_version(tmp_path / "models") is not None

    stored = _query(
        bin_dir, pg_port, "SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id"
    )
    assert stored.split() == ["retrain|COMPLETED"], stored
    assert not (tmp_path / "prefect-home" / "prefect.db").exists(), "the server kept its runs in PostgreSQL"
