"""`make bench` works end to end: a two-second run per target on each engine.

It asserts that the harness runs and reports, never how fast anything is.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.xdist_group("many_connections"),  # pgbench's clients
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian package) is not installed"),
]


def test_bench_reports_every_endpoint_on_both_engines() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "bench/run.py",
            "--duration",
            "1",
            # A 1,000-event batch takes most of a second here: 100 leave room on a slow day.
            "--batch-size",
            "100",
            "--warmup",
            "0",
            "--connections",
            "4",
            "--threads",
            "1",
            # One server worker: the run then holds one core, not both, and the suite's other
            # tests go on beside it (the harness is the same with any number).
            "--workers",
            "1",
            "--max-error-rate",
            "0.05",
            "--preview-tenants",
            "300",
            # The figure to keep is with 1,000 waiting; 50 show the scenario works.
            "--backlog-deliveries",
            "50",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("a plan change previewed over 300+ tenants") == 2, result.stdout
    # One line per engine: check and usage as ratios of /healthz, with the backlog and without.
    backlog = [line for line in result.stdout.splitlines() if "deliveries waiting" in line]
    backlog = [line for line in backlog if "of /healthz (without it" in line]
    assert len(backlog) == 2, result.stdout
    assert all(re.search(r"check \d\.\d\dx .*usage \d\.\d\dx", line) for line in backlog)
    # Issue 13's figure, from usage-many and usage-credits measured again side by side.
    pairs = re.findall(
        r"credit-priced feature runs at \d\.\d\dx of a plain one \(.* in [1-9]\d* pairs of 1 s "
        r"blocks alternating on the same connections: \d\.\d\d",
        result.stdout,
    )
    assert len(pairs) == 2, result.stdout
    for engine in ("sqlite", "postgresql"):
        rows = [line for line in result.stdout.splitlines() if line.lstrip().startswith(engine)]
        endpoints = {word for line in rows for word in line.split()}
        expected = {"healthz", "check", "check-refused", "entitlements", "usage-many"}
        expected |= {"usage-hot", "batch", "healthz-backlog", "check-backlog", "usage-backlog"}
        expected |= {"usage-credits"}
        assert expected <= endpoints, result.stdout
