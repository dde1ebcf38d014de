"""bench/trainer.py runs both sides (ours and TRL) and prints its comparison line.

The throughput target (ratio >= 1.0) is a bench figure, never asserted here: tests do
not assert on wall-clock time. This checks that the comparison runs end to end on the
same batch and reports sane numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_prints_both_sides(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "trainer.py"), "--quick", "--models", "tiny"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    m = re.fullmatch(
        r"ours_tokens_per_s=([\d.]+) trl_tokens_per_s=([\d.]+) ratio=([\d.]+) "
        r"peak_rss_ratio=([\d.]+)",
        last,
    )
    assert m, last
    ours, trl, ratio, mem = map(float, m.groups())
    assert ours > 0 and trl > 0 and mem > 0
    assert ratio == pytest.approx(ours / trl, rel=0.01)
