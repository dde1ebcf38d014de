"""The proof that it learns, small: bench/learning.py --quick must show the rise.

Runs in a subprocess (the benchmark owns its process: it seeds torch globally
and sets its thread count) and parses the benchmark's own last line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"^success_before=(?P<before>[\d.]+) success_after=(?P<after>[\d.]+) "
    r"steps=(?P<steps>\d+) seconds=(?P<seconds>[\d.]+)$"
)


@pytest.mark.slow
def test_quick_learning_run_rises_from_low_to_high(tmp_path):
    env = dict(os.environ, AGENTGYM_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "learning.py"), "--quick", "--no-progress",
         "--out-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = LINE.match(last)
    assert m, f"unexpected last line: {last!r}"
    assert float(m["before"]) <= 0.2, last
    assert float(m["after"]) >= 0.8, last
    # The run left its training metrics behind: one line per GRPO step.
    metrics = (tmp_path / "run" / "grpo" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) >= int(m["steps"])
