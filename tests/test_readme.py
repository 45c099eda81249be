"""The README's two commands are what a new user runs; they must say and do what they claim."""

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def test_readme_opens_with_make_run_and_make_test() -> None:
    commands = re.findall(r"^make (\w+)", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert commands[:2] == ["run", "test"]


def test_readme_offers_make_demo_after_them() -> None:
    commands = re.findall(r"^make (\w+)", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert commands[:3] == ["run", "test", "demo"]


def test_make_demo_fills_a_fresh_demo_database_then_serves_it_on_the_given_port() -> None:
    plan = subprocess.run(
        ["make", "-n", "demo", "PORT=8100"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    steps = [
        "rm -f demo.db",
        "billplane db upgrade",
        "billplane demo --port 8100",
        "billplane serve --host 127.0.0.1 --port 8100",
    ]
    at = [plan.index(step) for step in steps]
    assert at == sorted(at), plan
    for line in plan.splitlines():
        if "bin/billplane " in line:
            assert line.startswith("DATABASE_URL=sqlite:///./demo.db "), line


def test_ci_runs_the_readme_test_command_and_fails_on_failure() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in script
    assert re.search(r"^make test$", script, re.MULTILINE)


def test_make_run_migrates_then_serves_on_port_8000() -> None:
    plan = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert plan.index("billplane db upgrade") < plan.index("billplane serve")
    assert "--host 127.0.0.1 --port 8000" in plan


def test_the_first_make_run_says_it_installs_and_shows_each_package() -> None:
    """~85 s of silence on a fresh clone looked like a hang: the set-up says what it does, and
    pip prints a line per package (no --quiet on the install of billplane's own packages)."""
    plan = subprocess.run(
        ["make", "-n", "-B", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    announce = next(i for i, line in enumerate(plan) if "Setting up .venv" in line)
    install = next(i for i, line in enumerate(plan) if "-c constraints.txt" in line)
    assert announce < install
    assert "--quiet" not in plan[install]
    upgrade = next(i for i, line in enumerate(plan) if "billplane db upgrade" in line)
    assert install < upgrade


def test_make_run_takes_another_port() -> None:
    plan = subprocess.run(
        ["make", "-n", "run", "PORT=8100"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "billplane serve --host 127.0.0.1 --port 8100" in plan


@pytest.mark.e2e
def test_what_make_run_does_serves_docs_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """`make run`'s steps from an empty directory: the default SQLite file is created, migrated
    and served (on a free port here, as 8000 may be taken)."""
    billplane = Path(sys.executable).parent / "billplane"
    env = {"PATH": "/usr/bin:/bin", "BILLPLANE_ADMIN_TOKEN": "a" * 32}
    subprocess.run([str(billplane), "db", "upgrade"], cwd=tmp_path, env=env, check=True)
    assert (tmp_path / "billplane.db").exists()
    port = free_port()
    with subprocess.Popen(
        [str(billplane), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as server:
        try:
            docs = _get_when_up(f"http://127.0.0.1:{port}/docs")
            assert docs.status_code == 200
            assert "swagger" in docs.text.lower()
        finally:
            server.terminate()
            server.wait(timeout=15)
        # The start says where to go, on the port it serves, and how to log in.
        assert server.stdout is not None
        banner = server.stdout.read()
        assert f"dashboard http://127.0.0.1:{port}/ (log in with BILLPLANE_ADMIN_TOKEN" in banner
        assert f"API docs http://127.0.0.1:{port}/docs" in banner
        assert "a" * 32 not in banner


def _get_when_up(url: str) -> httpx.Response:
    import time

    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
