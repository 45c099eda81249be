"""The load generator: Debian's `wrk`, driven by the Lua scripts in `bench/lua/`.

Each Lua script prints one `BENCH_JSON {...}` line from wrk's `done()` hook (percentiles, errors,
a tally of response statuses), which is sturdier to read than wrk's human summary.
"""

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua"
MARKER = "BENCH_JSON "
PAIR_MARKER = "PAIR_JSON "  # pair.lua's blocks
WRK_TIMEOUT = "5s"  # a request slower than this counts as a timeout error


class LoadFailed(Exception):
    """wrk is missing, or did not run, or printed no result."""


@dataclass(frozen=True)
class Target:
    """One endpoint under load: what wrk sends there."""

    name: str
    path: str
    script: str  # file in bench/lua/
    args: list[str] = field(default_factory=list)

    def script_args(self) -> list[str]:
        # A fresh nonce per wrk run keeps idempotency keys unique across warm-up and runs.
        return [a.replace("{nonce}", secrets.token_hex(4)) for a in self.args]


@dataclass(frozen=True)
class Measurement:
    target: str
    requests: int
    duration_s: float
    latency_us: dict[str, Any]
    socket_errors: dict[str, int]
    statuses: dict[str, int]
    events_201: int = 0  # for batches: events answered 201 inside the responses
    # pair.lua: each block of the wall clock seen, in order: (parity, plain 201s, priced 201s)
    blocks: tuple[tuple[int, int, int], ...] = ()

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def events_per_s(self) -> float:
        return self.events_201 / self.duration_s if self.duration_s else 0.0

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not code.startswith("2"))

    @property
    def failed_requests(self) -> int:
        """Non-2xx answers plus requests lost to socket errors or timeouts."""
        return self.non_2xx + sum(self.socket_errors.values())

    def percentile_ms(self, p: str) -> float:
        return float(self.latency_us["percentiles"][p]) / 1000.0


def ensure_wrk() -> str:
    """The path of `wrk`, installing Debian's package first when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise LoadFailed(
            "`wrk` is not installed. Install it (Debian/Ubuntu: `sudo apt-get install -y wrk`) "
            "and run `make bench` again."
        )
    print("wrk is missing; installing it with apt-get ...", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, timeout=300).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, timeout=300, check=False)
        subprocess.run(install, env=env, timeout=300, check=False)
    found = shutil.which("wrk")
    if not found:
        raise LoadFailed("`apt-get install -y wrk` did not install wrk; install it by hand.")
    return found


def run_wrk(
    wrk: str,
    base_url: str,
    target: Target,
    *,
    seconds: int,
    connections: int,
    threads: int,
) -> Measurement:
    command = [
        wrk, "--latency", f"--threads={threads}", f"--connections={connections}",
        f"--duration={seconds}s", f"--timeout={WRK_TIMEOUT}",
        f"--script={LUA / target.script}", f"{base_url}{target.path}",
        "--", *target.script_args(),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        raise LoadFailed(f"wrk on {target.path} did not finish in {seconds + 60} s") from None
    if done.returncode != 0:
        raise LoadFailed(f"wrk on {target.path} failed ({done.returncode}): {done.stderr.strip()}")
    return _parse(target.name, done.stdout)


def _parse(name: str, stdout: str) -> Measurement:
    lines = stdout.splitlines()
    blocks: list[list[int]] = next(
        (
            json.loads(line.removeprefix(PAIR_MARKER))
            for line in lines
            if line.startswith(PAIR_MARKER)
        ),
        [],
    )
    for line in lines:
        if line.startswith(MARKER):
            raw = json.loads(line.removeprefix(MARKER))
            return Measurement(
                target=name,
                requests=raw["requests"],
                duration_s=raw["duration_us"] / 1e6,
                latency_us=raw["latency_us"],
                socket_errors={k: v for k, v in raw["errors"].items() if k != "status"},
                statuses={str(k): v for k, v in raw["statuses"].items()},
                events_201=raw.get("events_201", 0),
                blocks=tuple((int(p), int(a), int(b)) for p, a, b in blocks),
            )
    raise LoadFailed(f"wrk printed no {MARKER.strip()} line for {name}:\n{stdout}")


def wrk_version(wrk: str) -> str:
    # `wrk -v` prints a banner ("wrk debian/4.1.0-3+b2 [epoll] Copyright ...") and exits 1.
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
    banner = (done.stdout or done.stderr).strip().splitlines()
    return banner[0].split(" [")[0] if banner else "wrk (unknown version)"
