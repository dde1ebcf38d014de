import pytest
import torch

import tests.rl.envs  # noqa: F401  (registers test/Spell-v0)
from agentgym.policies.base import SamplingParams
from agentgym.rl import TrainConfig, Trainer
from agentgym.rl.losses import aggregate
from agentgym.rollout.collector import CollectConfig, Collector

# Two sequences: 3 trained tokens with losses 1, 2, 3 and 1 trained token with loss 6.
LOSS = torch.tensor([[1.0, 2.0, 3.0, 9.0], [6.0, 9.0, 9.0, 9.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])


def test_token_mean_weighs_every_token_equally():
    # (1 + 2 + 3 + 6) / 4 tokens
    assert float(aggregate(LOSS, MASK, "token_mean", n_tokens=4, n_seqs=2, norm=8)) == 3.0


def test_seq_mean_token_mean_weighs_every_sequence_equally():
    # ((1 + 2 + 3) / 3 + 6 / 1) / 2 sequences = (2 + 6) / 2
    assert float(aggregate(LOSS, MASK, "seq_mean_token_mean", n_tokens=4, n_seqs=2, norm=8)) == 4.0


def test_token_sum_norm_divides_by_a_constant():
    # (1 + 2 + 3 + 6) / (2 sequences x 8)
    assert float(aggregate(LOSS, MASK, "token_sum_norm", n_tokens=4, n_seqs=2, norm=8)) == 0.75


def test_micro_batches_sum_to_the_whole_batch_loss():
    for mode in ("token_mean", "seq_mean_token_mean", "token_sum_norm"):
        whole = aggregate(LOSS, MASK, mode, n_tokens=4, n_seqs=2, norm=8)
        parts = sum(
            aggregate(LOSS[i : i + 1], MASK[i : i + 1], mode, n_tokens=4, n_seqs=2, norm=8)
            for i in range(2)
        )
        assert float(parts) == pytest.approx(float(whole))


def _grads(policy, trajs, adv, **cfg):
    trainer = Trainer(policy.model, TrainConfig(lr=0.0, max_grad_norm=1e9, **cfg))
    trainer.update(trajs, adv)
    return torch.cat([p.grad.flatten() for p in policy.model.parameters() if p.grad is not None])


@pytest.mark.parametrize("mode", ["token_mean", "seq_mean_token_mean", "token_sum_norm"])
def test_modes_reach_the_trainer_independent_of_micro_batching(tiny_model_dir, mode):
    from agentgym.policies.hf import HFPolicy

    policy = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
    cfg = CollectConfig(
        group_size=3, progress=False, sampling=SamplingParams(max_new_tokens=5, seed=1)
    )
    trajs = Collector(policy, cfg).collect("test/Spell-v0", [0])
    adv = [1.0, -0.5, 0.25]
    one = _grads(policy, trajs, adv, loss_agg=mode, micro_batch_size=1, loss_agg_norm=7)
    policy.model.zero_grad()
    many = _grads(policy, trajs, adv, loss_agg=mode, micro_batch_size=8, loss_agg_norm=7)
    assert torch.allclose(one, many, atol=1e-6)
    assert one.abs().sum() > 0


def test_modes_differ_as_their_formulas_say(tiny_model_dir):
    from agentgym.policies.hf import HFPolicy

    policy = HFPolicy.from_pretrained(str(tiny_model_dir), device="cpu")
    cfg = CollectConfig(
        group_size=2, progress=False, sampling=SamplingParams(max_new_tokens=5, seed=1)
    )
    trajs = Collector(policy, cfg).collect("test/Spell-v0", [0])
    n_tokens = sum(sum(t.ledger.loss_mask) for t in trajs)
    token = _grads(policy, trajs, [1.0, 1.0], loss_agg="token_mean")
    policy.model.zero_grad()
    dr = _grads(policy, trajs, [1.0, 1.0], loss_agg="token_sum_norm", loss_agg_norm=10)
    # token_sum_norm = token_mean x n_tokens / (2 sequences x 10)
    assert torch.allclose(dr, token * n_tokens / 20, atol=1e-7)
