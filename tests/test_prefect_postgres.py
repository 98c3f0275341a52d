"""The Prefect server on PostgreSQL (docs/scaling.md, "Prefect server on PostgreSQL"): a throw-away
cluster on a free 127.0.0.1 port, `scripts/prefect-server` pointed at it through
PREFECT_API_DATABASE_CONNECTION_URL, and one retrain run against that server."""

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
from tests.prefect_stack import PROJECT_ROOT, _free_port, _start, _stop, _subprocess_env, _wait_for_health

DATABASE = "prefect"
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
    """A fresh cluster with database `prefect` owned by role `retrain` (trust on 127.0.0.1); its port."""
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
            _run(
                [
                    _psql(bin_dir),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    ROLE,
                    "-d",
                    "postgres",
                    "-c",
                    f"CREATE DATABASE {DATABASE}",
                ]
            )
            yield port
        finally:
            _run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _psql(bin_dir: Path) -> str:
    return str(bin_dir / "psql") if (bin_dir / "psql").exists() else shutil.which("psql") or "psql"


def _query(bin_dir: Path, port: int, sql: str) -> str:
    return _run(
        [_psql(bin_dir), "-h", "127.0.0.1", "-p", str(port), "-U", ROLE, "-d", DATABASE, "-tA", "-c", sql]
    )


def test_the_retrain_flow_runs_against_a_prefect_server_on_postgresql(tmp_path: Path) -> None:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin")
    with postgres_cluster(bin_dir) as pg_port:
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
        assert not (tmp_path / "prefect-home" / "prefect.db").exists(), (
            "the server kept its runs in PostgreSQL"
        )
