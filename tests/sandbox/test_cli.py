"""``agentgym sandbox``: the tyro subcommands, as a user types them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agentgym.sandbox.cli import main

from .conftest import require

ROOT = Path(__file__).resolve().parents[2]


def test_run_prints_output_and_exits_with_the_programs_code(tmp_path, capsys):
    require("bwrap")
    prog = tmp_path / "p.py"
    prog.write_text("import sys\nprint(input() * 2)\nsys.exit(3)\n")
    stdin = tmp_path / "in.txt"
    stdin.write_text("ab\n")
    code = main(["sandbox", "run", str(prog), "--backend", "bwrap", "--stdin", str(stdin)])
    assert code == 3
    captured = capsys.readouterr()
    assert captured.out == "abab\n"
    assert "[bwrap] exit_code=3" in captured.err


def test_run_json_reports_the_limit_that_stopped_it(tmp_path, capsys):
    require("bwrap")
    prog = tmp_path / "spin.py"
    prog.write_text("while True:\n    pass\n")
    code = main(["run", str(prog), "--backend", "bwrap", "--wall-time", "1", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["timed_out"] is True and result["backend"] == "bwrap"
    assert code != 0


def test_bad_input_gets_a_clear_error(tmp_path, capsys):
    assert main(["run", str(tmp_path / "missing.py"), "--backend", "local"]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "x.py", "--backend", "nope"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("script", "flag"),
    [("sandbox.py", "--threads"), ("plot_learning.py", "--title"), ("trainer.py", "--models")],
)
def test_bench_scripts_take_tyro_flags(script, flag):
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage:") and script in out.stdout.splitlines()[0]
    assert flag in out.stdout
