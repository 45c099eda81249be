"""The bench's pair (issue 13's figure) reads pair.lua's blocks right: whole blocks only, each
plain block with the priced one after it, each counting its own kind's answers."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import _parse  # noqa: E402
from report import Pair  # noqa: E402

BENCH = (
    'BENCH_JSON {"duration_us": 11000000, "requests": 40, "bytes": 0, "errors": {"connect": 0, '
    '"read": 0, "write": 0, "status": 0, "timeout": 0}, "latency_us": {"mean": 1.0, "stdev": 0.0, '
    '"max": 1, "percentiles": {"50": 1, "99": 1}}, "statuses": {"201": 40}, "events_201": 0}'
)


def _pair(blocks: str) -> Pair:
    return Pair(_parse("usage-pair", f"{BENCH}\nPAIR_JSON {blocks}\n"), block_s=2)


def test_the_ends_and_a_priced_block_first_are_left_out() -> None:
    # cut short, priced first (no plain before it), two whole pairs, plain with no priced after
    pair = _pair("[[1, 0, 5], [1, 1, 50], [0, 100, 4], [1, 4, 80], [0, 90, 4], [1, 4, 90], "
                 "[0, 60, 2], [1, 3, 7]]")  # fmt: skip
    assert pair.pairs() == [(100, 80), (90, 90)]
    assert pair.ratio() == 170 / 190
    assert pair.slice_ratios() == [0.8, 1.0]
    assert pair.plain_201() == 0 + 1 + 100 + 4 + 90 + 4 + 60 + 3  # every plain 201, for the audit


def test_a_run_too_short_for_a_whole_pair_has_no_ratio() -> None:
    pair = _pair("[[0, 10, 0], [1, 0, 10], [0, 10, 0]]")
    assert pair.pairs() == []
    assert pair.ratio() is None
    assert Pair().ratio() is None
