"""One Trainer.update on a saved batch: in one process, or under torchrun (each rank its share).

    python tests/rl/ddp_update.py MODEL_DIR BATCH.jsonl OUT.pt
    torchrun --nproc-per-node 2 tests/rl/ddp_update.py MODEL_DIR BATCH.jsonl OUT.pt

Groups are dealt to ranks whole (rank r takes groups r, r+W, ...), as the loop does.
"""

from __future__ import annotations

import json
import os
import sys

import torch

from agentgym.policies.hf import HFPolicy
from agentgym.rl import TrainConfig, Trainer
from agentgym.rl.loop import _accelerator
from agentgym.trajectory import iter_jsonl


def main(model_dir: str, batch: str, out: str) -> None:
    acc = _accelerator()
    rank, world = (acc.process_index, acc.num_processes) if acc is not None else (0, 1)
    rows = list(iter_jsonl(batch))
    advs = json.loads(open(batch + ".adv").read())
    groups = list(dict.fromkeys(t.group_id for t in rows))
    mine = set(groups[rank::world])
    trajs = [t for t in rows if t.group_id in mine]
    adv = [a for t, a in zip(rows, advs, strict=True) if t.group_id in mine]
    policy = HFPolicy.from_pretrained(model_dir, device="cpu")
    cfg = TrainConfig(lr=1e-3, micro_batch_size=2, loss_agg="seq_mean_token_mean", epochs=2)
    trainer = Trainer(policy.model, cfg, acc)
    metrics = trainer.update(trajs, adv)
    if rank == 0:
        state = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
        torch.save({"state": state, "metrics": metrics, "world": world}, out)
    if acc is not None:
        acc.wait_for_everyone()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(*sys.argv[1:4])
