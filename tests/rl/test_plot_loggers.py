import json

import pytest

from agentgym.cli import main
from agentgym.errors import ConfigError
from agentgym.rl.loggers import LOGGERS, JsonlLogger
from agentgym.rl.plot import CURVES, plot_run


def _run_dir(tmp_path):
    rows = [{"step": 0, "eval/success_rate": 0.0}]
    for s in range(1, 4):
        rows.append(
            {
                "step": float(s),
                "reward/total_mean": 0.1 * s,
                "reward/success_rate": 0.2 * s,
                "kl/mean": 0.01 * s,
                "policy/entropy": 3.0 - s,
                "logprob/abs_diff_mean": 1e-6,
                "logprob/abs_diff_max": 1e-5,
                "perf/tokens_per_s": 100.0 * s,
            }
        )
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{torn")
    return tmp_path


def test_plot_writes_one_png_per_curve(tmp_path, capsys):
    run = _run_dir(tmp_path)
    assert main(["plot", str(run)]) == 0
    pngs = sorted(p.name for p in (run / "plots").iterdir())
    assert pngs == sorted(f"{stem}.png" for stem in CURVES)
    for name in pngs:
        assert (run / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "reward.png" in capsys.readouterr().out


def test_plot_skips_curves_without_data_and_needs_a_run(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1.0, "policy/entropy": 2.0}))
    assert [p.name for p in plot_run(tmp_path)] == ["entropy.png"]
    with pytest.raises(ConfigError, match="no metrics.jsonl"):
        plot_run(tmp_path / "nowhere")


def test_jsonl_logger_resumes_at_an_offset(tmp_path):
    log = JsonlLogger(tmp_path / "m.jsonl")
    log.log({"step": 1.0}, 1)
    keep = log.tell()
    log.log({"step": 2.0}, 2)
    log.close()
    log = JsonlLogger(tmp_path / "m.jsonl", keep)
    log.log({"step": 2.5}, 2)
    log.close()
    assert [json.loads(x)["step"] for x in (tmp_path / "m.jsonl").read_text().splitlines()] == [
        1.0,
        2.5,
    ]


def test_tensorboard_logger_writes_events(tmp_path):
    pytest.importorskip("tensorboard")
    tb = LOGGERS.get("tensorboard")(tmp_path, {})
    tb.log({"step": 1.0, "reward/total_mean": 0.5}, 1)
    tb.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    [event] = acc.Scalars("reward/total_mean")
    assert event.step == 1 and event.value == 0.5
    with pytest.raises(ConfigError, match="unknown metrics logger"):
        LOGGERS.get("tensorbored")


def test_train_flags_and_config_file_reach_the_nested_configs(tmp_path):
    from agentgym.cli import parse_command

    _, cfg = parse_command(
        [
            "train",
            "--lora.rank", "8",
            "--lora.target-modules", "q_proj", "v_proj",
            "--kl.coef", "0.05",
            "--kl.estimator", "k2",
            "--kl.where", "reward",
            "--loss-agg", "seq_mean_token_mean",
            "--checkpoint.every", "2",
            "--logprob.correction", "tis",
            "--filter.zero-variance", "resample",
            "--loggers", "tensorboard",
        ]
    )  # fmt: skip
    assert cfg.lora.rank == 8 and cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert (cfg.kl.coef, cfg.kl.estimator, cfg.kl.where) == (0.05, "k2", "reward")
    assert cfg.loss_agg == "seq_mean_token_mean" and cfg.checkpoint.every == 2
    assert cfg.logprob.correction == "tis" and cfg.filter.zero_variance == "resample"
    assert cfg.loggers == ["tensorboard"]
    toml = tmp_path / "t.toml"
    toml.write_text("[lora]\nrank = 4\nalpha = 8.0\n[kl]\ncoef = 0.1\n[checkpoint]\nevery = 5\n")
    _, cfg = parse_command(["train", "--config", str(toml), "--kl.coef", "0.2"])
    assert (cfg.lora.rank, cfg.lora.alpha, cfg.kl.coef, cfg.checkpoint.every) == (4, 8.0, 0.2, 5)
    _, cfg = parse_command(["train", "--resume", str(tmp_path)])
    assert cfg.resume == str(tmp_path)
