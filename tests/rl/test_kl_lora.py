import math

import numpy as np
import pytest
import torch

import tests.rl.envs  # noqa: F401
from agentgym.policies.base import SamplingParams
from agentgym.policies.hf import HFPolicy
from agentgym.rl import TrainConfig, Trainer
from agentgym.rl.config import KLConfig, LoraConfig
from agentgym.rl.kl import kl_estimate
from agentgym.rl.loop import sync_weights
from agentgym.rl.lora import load_adapter, merged_state_dict, save_adapter, save_merged
from agentgym.rollout.collector import CollectConfig, Collector


def test_kl_estimators_by_hand():
    p, q = 0.5, 0.2  # pi(y), ref(y)
    r = math.log(p / q)
    lp, lq = torch.tensor([math.log(p)]), torch.tensor([math.log(q)])
    assert float(kl_estimate(lp, lq, "k1")) == pytest.approx(r)
    assert float(kl_estimate(lp, lq, "k2")) == pytest.approx(r * r / 2)
    assert float(kl_estimate(lp, lq, "k3")) == pytest.approx(q / p - 1 - math.log(q / p))
    assert float(kl_estimate(lp, lp, "k3")) == 0.0


@pytest.fixture()
def policy(tiny_model_dir):
    return HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")


def _trajs(policy, n=3):
    cfg = CollectConfig(
        group_size=n, progress=False, sampling=SamplingParams(max_new_tokens=5, seed=2)
    )
    return Collector(policy, cfg).collect("test/Spell-v0", [0])


def _seq_logp(trainer, module, traj):
    led = traj.ledger
    ids = torch.tensor([led.input_ids])
    with torch.no_grad():
        lp = trainer._logits_logprobs(module, ids, torch.ones_like(ids))[1][0]
    return sum(lp[i - 1].item() for i, m in enumerate(led.loss_mask) if m)


def test_kl_coef_zero_builds_no_reference(policy):
    n_before = sum(p.numel() for p in policy.model.parameters())
    trainer = Trainer(policy.model, TrainConfig(kl=KLConfig(coef=0.0)))
    assert trainer.reference is None
    full = Trainer(policy.model, TrainConfig(kl=KLConfig(coef=0.1)))
    assert full.reference is not None and full.reference.copy is not None
    assert sum(p.numel() for p in full.reference.copy.parameters()) == n_before
    assert not any(p.requires_grad for p in full.reference.copy.parameters())


def test_full_finetune_reference_stays_frozen_and_kl_grows(policy):
    trajs = _trajs(policy)
    cfg = TrainConfig(lr=5e-3, kl=KLConfig(coef=0.1, where="reward", estimator="k1"))
    trainer = Trainer(policy.model, cfg)
    ref_before = [_seq_logp(trainer, trainer.reference.copy, t) for t in trajs]
    assert np.allclose(trainer.sequence_kl(trajs), 0.0, atol=1e-4)  # policy == reference
    for _ in range(3):
        trainer.update(trajs, [1.0, -1.0, 0.5])
    ref_after = [_seq_logp(trainer, trainer.reference.copy, t) for t in trajs]
    assert ref_after == pytest.approx(ref_before)
    new = _trajs(policy)  # sampled from the moved policy
    kl = trainer.sequence_kl(new)
    # k1 summed = sampler logprob - reference logprob over the sampled tokens
    want = [
        sum(x for x, m in zip(t.ledger.logprobs, t.ledger.loss_mask, strict=True) if m)
        - _seq_logp(trainer, trainer.reference.copy, t)
        for t in new
    ]
    assert kl == pytest.approx(want, abs=1e-4)
    assert abs(kl).sum() > 1e-3


def test_kl_in_loss_pulls_back_toward_the_reference(policy):
    trajs = _trajs(policy)
    cfg = TrainConfig(lr=1e-2, kl=KLConfig(coef=1.0, where="loss"))
    trainer = Trainer(policy.model, cfg)
    trainer.update(trajs, [1.0, -1.0, 0.5])  # move away
    m = trainer.update(trajs, [0.0, 0.0, 0.0])  # no advantage: only the KL term pulls
    assert m["kl/mean"] > 0 and m["perf/trained_samples"] == 3.0 and m["loss/grad_norm"] > 0


def test_lora_trains_only_the_adapter_and_its_reference_is_the_base(policy, tiny_model_dir):
    trajs = _trajs(policy)
    base_state = {k: v.clone() for k, v in policy.model.state_dict().items()}
    cfg = TrainConfig(
        lr=1e-2,
        lora=LoraConfig(rank=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj"]),
        kl=KLConfig(coef=0.1),
    )
    trainer = Trainer(policy.model, cfg)
    assert trainer.reference.copy is None  # the base with the adapter off, no second copy
    fresh = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu").model
    before = [_seq_logp(trainer, fresh, t) for t in trajs]
    for _ in range(2):
        trainer.update(trajs, [1.0, -1.0, 0.5])
    with trainer.reference.model(trainer.model) as ref:
        assert [_seq_logp(trainer, ref, t) for t in trajs] == pytest.approx(before, abs=1e-5)
    moved = [_seq_logp(trainer, trainer.model, t) for t in trajs]
    assert not np.allclose(moved, before, atol=1e-3)
    # the policy object samples from the adapted model (peft injects in place)
    assert [_seq_logp(trainer, policy.model, t) for t in trajs] == pytest.approx(moved)
    merged = merged_state_dict(trainer.peft_model)
    assert set(merged) == set(base_state)
    assert any(not torch.equal(merged[k], base_state[k]) for k in merged if "q_proj" in k)


def test_adapter_and_merged_round_trips(policy, tiny_model_dir, tmp_path):
    trajs = _trajs(policy)
    cfg = TrainConfig(lr=1e-2, lora=LoraConfig(rank=4, alpha=8))
    trainer = Trainer(policy.model, cfg)
    for _ in range(2):
        trainer.update(trajs, [1.0, -1.0, 0.5])
    want = [_seq_logp(trainer, trainer.model, t) for t in trajs]
    save_adapter(trainer.peft_model, tmp_path / "adapter")
    save_merged(trainer.peft_model, tmp_path / "merged", policy.tokenizer)
    merged = HFPolicy.from_pretrained(str(tmp_path / "merged"), device="cpu")
    assert [_seq_logp(trainer, merged.model, t) for t in trajs] == pytest.approx(want, abs=1e-4)
    other = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
    t2 = Trainer(other.model, cfg)
    load_adapter(t2.peft_model, tmp_path / "adapter")
    assert [_seq_logp(t2, t2.model, t) for t in trajs] == pytest.approx(want, abs=1e-5)


class _Engine:
    """A second copy of the model, loaded the way a serving engine loads weights."""

    def __init__(self, path):
        self.served = HFPolicy.from_pretrained(str(path), device="cpu").model

    def load_weights(self, model):
        missing, unexpected = self.served.load_state_dict(model.state_dict(), strict=False)
        assert not unexpected and set(missing) <= {"lm_head.weight"}


def test_weight_sync_with_lora_sends_merged_weights(policy, tiny_model_dir):
    trajs = _trajs(policy)
    trainer = Trainer(policy.model, TrainConfig(lr=1e-2, lora=LoraConfig(rank=4)))
    trainer.update(trajs, [1.0, -1.0, 0.5])
    engine = _Engine(tiny_model_dir)
    sync_weights(engine, trainer)
    want = [_seq_logp(trainer, trainer.model, t) for t in trajs]
    assert [_seq_logp(trainer, engine.served, t) for t in trajs] == pytest.approx(want, abs=1e-4)
