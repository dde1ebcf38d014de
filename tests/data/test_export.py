"""agentgym export: parquet and datasets with the ledger columns, SFT chat JSONL."""

from __future__ import annotations

import json

import pytest

from agentgym.cli import main
from agentgym.data import ledger_rows, sft_records, to_hf, to_parquet
from agentgym.data.export import _arrow_schema
from agentgym.trajectory import read_jsonl
from tests.data.fixtures import collect_mixed


@pytest.fixture(scope="module")
def trajs_file(tiny_tokenizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "r.jsonl"
    collect_mixed(tiny_tokenizer, out)
    return out


def test_parquet_round_trips_the_ledger(trajs_file, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    trajs = read_jsonl(trajs_file)
    n = to_parquet(trajs, tmp_path / "t.parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.schema == _arrow_schema() and table.num_rows == n == len(trajs)
    rows = table.to_pylist()
    for t, row in zip(trajs, rows, strict=True):
        assert (row["env_id"], row["seed"], row["group_id"]) == (t.env_id, t.seed, t.group_id)
        assert (row["status"], row["success"], row["outcome"]) == (t.status, t.success, t.outcome)
        assert row["turn_rewards"] == t.turn_rewards
        assert json.loads(row["messages_json"]) == t.messages
        assert [m["content"] for m in row["messages"]] == [m["content"] for m in t.messages]
        if t.ledger is None:  # the env_error one failed before sampling anything
            assert row["input_ids"] == [] and row["error"]
            continue
        assert row["input_ids"] == t.ledger.input_ids
        assert row["loss_mask"] == t.ledger.loss_mask
        assert row["logprobs"] == t.ledger.logprobs  # float64: exact
        assert row["turn_spans"] == [list(s) for s in t.ledger.turn_spans]
        comps = json.loads(row["reward_components"])
        assert comps == [turn.reward_components for turn in t.turns]


def test_hf_dataset_loads_back(trajs_file, tmp_path):
    datasets = pytest.importorskip("datasets")
    trajs = read_jsonl(trajs_file)
    assert to_hf(trajs, tmp_path / "ds") == len(trajs)
    ds = datasets.load_from_disk(str(tmp_path / "ds"))
    assert ds.num_rows == len(trajs)
    assert ds[0]["input_ids"] == trajs[0].ledger.input_ids
    assert ds.filter(lambda r: r["success"]).num_rows == sum(bool(t.success) for t in trajs)


def test_per_turn_ledgers_give_one_row_per_turn(trajs_file):
    t = read_jsonl(trajs_file)[0]
    t.per_turn_ledgers, t.ledger = [t.ledger, t.ledger], None
    rows = ledger_rows([t])
    assert [r["part"] for r in rows] == [0, 1]


def test_sft_keeps_successes_and_ends_on_the_action(trajs_file):
    trajs = read_jsonl(trajs_file)
    records = sft_records(trajs)
    wins = [t for t in trajs if t.success]
    assert 0 < len(records) == len(wins) < len(trajs)
    for r, t in zip(records, wins, strict=True):
        assert r["messages"][-1] == {"role": "assistant", "content": t.turns[-1].action}
        assert r["messages"] == t.messages[: len(r["messages"])]


@pytest.mark.parametrize("fmt", ["parquet", "sft", "hf"])
def test_cli_export(trajs_file, tmp_path, fmt, capsys):
    if fmt != "sft":
        pytest.importorskip("datasets" if fmt == "hf" else "pyarrow")
    out = tmp_path / f"out.{fmt}"
    assert main(["export", str(trajs_file), "--to", fmt, "--out", str(out)]) == 0
    assert out.exists()
    n = len(read_jsonl(trajs_file))
    expect = len(sft_records(read_jsonl(trajs_file))) if fmt == "sft" else n
    assert f"{expect} " in capsys.readouterr().out
    if fmt == "sft":
        lines = out.read_text().splitlines()
        assert len(lines) == expect and all("messages" in json.loads(x) for x in lines)


def test_cli_export_unknown_format(trajs_file):
    with pytest.raises(SystemExit):
        main(["export", str(trajs_file), "--to", "csv"])
