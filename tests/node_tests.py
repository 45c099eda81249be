"""What a run of Node's test runner (`node --test --test-reporter=tap`) said, for the tests that run
the JS client's own tests."""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NodeRun:
    returncode: int
    output: str
    summary: dict[str, int]
    outcomes: dict[str, str]  # top-level test name -> "ok", "not ok" or "skip"

    @classmethod
    def of(cls, returncode: int, tap: str) -> "NodeRun":
        return cls(returncode, tap, _summary(tap), _outcomes(tap))


def _summary(tap: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"^# (\w+) (\d+)$", tap, re.MULTILINE)}


def _outcomes(tap: str) -> dict[str, str]:
    outcomes = {}
    for status, name, skip in re.findall(r"^(ok|not ok) \d+ - (.+?)( # SKIP.*)?$", tap, re.M):
        outcomes[name] = "skip" if skip else status
    return outcomes
