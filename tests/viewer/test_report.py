"""The HTML report's content (the browser test checks how it behaves)."""

from __future__ import annotations

import json
import re

from agentgym.cli import main
from agentgym.trajectory import read_jsonl
from agentgym.viewer import write_report


def _embedded(html: str) -> dict:
    m = re.search(r"<script type='application/json' id='agentgym-data'>(.*?)</script>", html, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1))


def test_report_is_self_contained_and_carries_the_ledger(trajs_file, tmp_path):
    out = write_report(trajs_file, tmp_path / "r.html")
    html = out.read_text()
    # Nothing fetched from outside: no external scripts, styles, images or links.
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", html)
    assert "<style>" in html and html.count("<script") == 2
    data = _embedded(html)
    trajs = read_jsonl(trajs_file)
    assert len(data["trajectories"]) == len(trajs)
    for d, t in zip(data["trajectories"], trajs, strict=True):
        assert d["total_reward"] == t.total_reward and d["status"] == t.status
        assert [x["reward"] for x in d["turns"]] == t.turn_rewards
        assert [x["components"] for x in d["turns"]] == [x.reward_components for x in t.turns]
        if t.ledger is not None:
            assert d["tokens"]["ids"] == t.ledger.input_ids
            assert d["tokens"]["mask"] == t.ledger.loss_mask
    assert data["vocab"] is None and data["is_run"] is False


def test_hostile_text_cannot_end_the_script(trajs_file, tmp_path):
    html = write_report(trajs_file, tmp_path / "r.html").read_text()
    # The only </script> closings are the page's own two.
    assert html.count("</script>") == 2
    assert any("</script><script>" in t.turns[-1].action for t in read_jsonl(trajs_file))


def test_tokenizer_decodes_the_token_view(trajs_file, tiny_model_dir, tiny_tokenizer, tmp_path):
    html = write_report(trajs_file, tmp_path / "r.html", tokenizer=str(tiny_model_dir)).read_text()
    vocab = _embedded(html)["vocab"]
    t = read_jsonl(trajs_file)[0]
    assert "".join(vocab[str(i)] for i in t.ledger.input_ids) == tiny_tokenizer.decode(
        t.ledger.input_ids
    )


def test_run_dir_report(run_dir):
    assert main(["view", str(run_dir)]) == 0
    data = _embedded((run_dir / "report.html").read_text())
    assert data["is_run"] is True
    assert sorted({t["step"] for t in data["trajectories"]}) == [1, 2, 3]
    assert [r["step"] for r in data["metrics"]] == [0, 1.0, 2.0, 3.0, 3]


def test_cli_view_keeps_printing_and_writes_html(trajs_file, tmp_path, capsys):
    assert main(["view", str(trajs_file), "--index", "0"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("=== #0 test/Echo-v0") and "[ASSISTANT]" in printed
    assert main(["view", str(trajs_file), "--html", str(tmp_path / "v.html")]) == 0
    assert "report written to" in capsys.readouterr().out
    assert (tmp_path / "v.html").read_text().startswith("<!doctype html>")
