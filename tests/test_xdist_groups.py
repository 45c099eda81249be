"""`make test` runs the suite on two workers with `--dist loadgroup`: the tests of one
`xdist_group` (the container tests' one Docker engine, the tests that open many connections)
must run on one worker, one after another. pytest 9.2 broke that without a word
(pytest-xdist#1386), and the container tests' engine was stopped under the other worker's
feet."""

import re
import subprocess
import sys
from pathlib import Path

GROUPED = """
import pytest

pytestmark = pytest.mark.xdist_group("together")


@pytest.mark.parametrize("n", range(6))
def test_grouped(n):
    pass
"""

LOOSE = """
import pytest


@pytest.mark.parametrize("n", range(6))
def test_loose(n):
    pass
"""


def test_the_tests_of_one_group_run_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    (tmp_path / "test_loose.py").write_text(LOOSE)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-v",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    workers = re.findall(r"^\[(gw\d)\] .*PASSED test_grouped\.py", done.stdout, re.MULTILINE)
    assert len(workers) == 6, done.stdout
    assert len(set(workers)) == 1, done.stdout
