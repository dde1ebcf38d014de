import math
from dataclasses import replace

import pytest
import torch

import tests.rl.envs  # noqa: F401
from agentgym.errors import ConfigError
from agentgym.policies.base import SamplingParams
from agentgym.policies.hf import HFPolicy
from agentgym.rl import TrainConfig, Trainer, train
from agentgym.rl.config import FilterConfig, LogprobConfig
from agentgym.rl.filters import select
from agentgym.rl.loop import logprob_space
from agentgym.rl.trainer import _nucleus_logits
from agentgym.rollout.collector import CollectConfig, Collector


class Hotter:
    """A mismatched sampler: samples at temperature 2 but the trainer assumes 1."""

    def __init__(self, inner):
        self.inner, self.tokenizer, self.model = inner, inner.tokenizer, inner.model

    def generate(self, requests, params):
        return self.inner.generate(requests, replace(params, temperature=2.0))


class Shifted:
    """A mismatched sampler: reports every logprob `shift` nats too low."""

    def __init__(self, inner, shift):
        self.inner, self.tokenizer, self.model, self.shift = (
            inner,
            inner.tokenizer,
            inner.model,
            shift,
        )

    def generate(self, requests, params):
        gens = self.inner.generate(requests, params)
        return [replace(g, logprobs=[x - self.shift for x in g.logprobs]) for g in gens]


def _collect(policy, n=3, **sampling):
    params = SamplingParams(max_new_tokens=5, seed=4, **{"temperature": 1.0} | sampling)
    cfg = CollectConfig(group_size=n, progress=False, sampling=params)
    return Collector(policy, cfg).collect("test/Spell-v0", [0, 1])


@pytest.fixture()
def policy(tiny_model_dir):
    return HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")


ADV = [1.0, -1.0, 0.5, -0.5, 0.25, -0.25]


def test_hf_sampler_agrees_with_the_trainer(policy):
    m = Trainer(policy.model, TrainConfig(lr=1e-3)).update(_collect(policy), ADV)
    assert m["logprob/abs_diff_mean"] < 1e-5 and m["logprob/abs_diff_max"] < 1e-4
    assert m["logprob/frac_beyond_bound"] == 0.0
    assert m["policy/entropy"] > 0


def test_a_mismatched_sampler_shows_in_the_metrics(policy):
    m = Trainer(policy.model, TrainConfig(lr=0.0)).update(_collect(Hotter(policy)), ADV)
    assert m["logprob/abs_diff_mean"] > 0.05 and m["logprob/abs_diff_max"] > 0.2
    cfg = TrainConfig(lr=0.0, logprob=LogprobConfig(bound=0.2))
    m = Trainer(policy.model, cfg).update(_collect(Shifted(policy, 0.3)), ADV)
    assert m["logprob/abs_diff_mean"] == pytest.approx(0.3, abs=1e-4)
    assert m["logprob/frac_beyond_bound"] == 1.0


def test_truncated_importance_sampling_weights_by_the_capped_ratio(policy):
    trajs = _collect(policy)
    shifted = _collect(Shifted(policy, 1.0))  # same samples, logprobs 1 nat too low
    adv = [1.0, 0.5, 0.25, 1.0, 0.5, 0.25]
    plain = Trainer(policy.model, TrainConfig(lr=0.0, max_grad_norm=1e9)).update(trajs, adv)
    cfg = TrainConfig(
        lr=0.0, max_grad_norm=1e9, logprob=LogprobConfig(correction="tis", tis_cap=2.0)
    )
    tis = Trainer(policy.model, cfg).update(shifted, adv)
    # ratio to the trainer's own old logprobs is 1; weight = min(e^1, 2) = 2 on every token
    assert tis["loss/policy"] == pytest.approx(2 * plain["loss/policy"], rel=1e-4)
    assert tis["loss/grad_norm"] == pytest.approx(2 * plain["loss/grad_norm"], rel=1e-4)
    assert tis["loss/clip_frac"] == 0.0


def test_nucleus_logits_by_hand():
    probs = torch.tensor([[[0.5, 0.3, 0.15, 0.05]]])
    logits = probs.log()
    # top_p 0.7: 0.5 (mass above 0) and 0.3 (mass above 0.5) are in, 0.15 (0.8) is out
    out = torch.log_softmax(_nucleus_logits(torch, logits, torch.tensor([[[0]]]), 0.7), -1)
    assert out.exp()[0, 0].tolist() == pytest.approx([0.625, 0.375, 0.0, 0.0])
    # a sampled token outside the nucleus is kept (finite logprob)
    out = torch.log_softmax(_nucleus_logits(torch, logits, torch.tensor([[[3]]]), 0.7), -1)
    assert math.isfinite(float(out[0, 0, 3]))


def test_top_p_below_one_needs_a_known_logprob_convention(policy):
    cfg = TrainConfig(collect=CollectConfig(sampling=SamplingParams(top_p=0.9)))
    assert logprob_space(cfg, policy) is None  # HF: full-vocabulary logprobs
    with pytest.raises(ConfigError, match="logprob.space nucleus"):
        logprob_space(cfg, Shifted(policy, 0.0))
    nucleus = replace(cfg, logprob=LogprobConfig(space="nucleus"))
    assert logprob_space(nucleus, Shifted(policy, 0.0)) == 0.9
    assert logprob_space(TrainConfig(), Shifted(policy, 0.0)) is None  # top_p = 1


def test_zero_variance_groups_dropped_and_truncated_masked(policy):
    trajs = _collect(policy)
    for t in trajs[3:]:  # second group: all equal rewards
        t.turns[-1].reward = 0.5
    trajs[0].status = "truncated"
    kept, adv, m = select(trajs, [0.0] * 6, FilterConfig(zero_variance="drop", mask_truncated=True))
    assert kept == trajs[1:3] and m == {"filter/dropped": 3.0, "filter/masked_truncated": 1.0}
    kept, _, _ = select(trajs, [0.0] * 6, FilterConfig())
    assert kept == trajs


def test_infra_errors_never_reach_the_update(policy):
    trajs = _collect(policy)
    trajs[0].status = "infra_error"
    m = Trainer(policy.model, TrainConfig(lr=0.0)).update(trajs, ADV)
    assert m["perf/trained_samples"] == 5.0
    assert m["perf/tokens"] == sum(sum(t.ledger.loss_mask) for t in trajs[1:])


def test_resample_fills_the_batch_with_informative_groups(policy, tmp_path):
    cfg = TrainConfig(
        env_id="agentgym/FrozenLake-v0",  # an untrained model: every group ties
        steps=1,
        tasks_per_step=2,
        collect=CollectConfig(group_size=2, max_turns=1, sampling=SamplingParams(max_new_tokens=2)),
        filter=FilterConfig(zero_variance="resample", max_resample_rounds=2),
        out_dir=str(tmp_path),
        save_model=False,
    )
    [m] = train(cfg, policy=policy, progress=False).history
    assert m["filter/rounds"] == 3.0 and m["filter/dropped"] == 12.0
    assert m["perf/trained_samples"] == 0.0
    assert sorted(p.name for p in (tmp_path / "rollouts").iterdir()) == [
        "step00000-r1.jsonl",
        "step00000-r2.jsonl",
        "step00000.jsonl",
    ]


def test_bf16_autocast_path_runs_and_default_is_fp32(policy):
    trajs = _collect(policy)
    fp32 = Trainer(policy.model, TrainConfig(lr=0.0))
    assert fp32.config.precision == "auto" and isinstance(
        fp32._autocast(), type(__import__("contextlib").nullcontext())
    )
    m = Trainer(policy.model, TrainConfig(lr=0.0, precision="bf16")).update(trajs, ADV)
    assert math.isfinite(m["loss/policy"]) and m["loss/grad_norm"] > 0
    # bf16 logits are coarser than the sampler's fp32 ones: the metric sees it
    assert m["logprob/abs_diff_max"] > 1e-4
