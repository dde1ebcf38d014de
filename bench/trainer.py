"""Our policy update against TRL's GRPO loss: same model, same token batch, same machine.

Each side runs in a subprocess of its own (so that each peak RSS is its own), on the
same synthetic batch: B sequences of P prompt tokens and C sampled tokens, group-relative
advantages, the sampler's logprobs from the starting model (on-policy). One "update" is
what a GRPO step costs the trainer: forward, per-token loss (PPO clip, token mean over
the batch: TRL's ``loss_type="bnpo"``, no KL), backward, gradient clipping, AdamW step.

- ours: :meth:`agentgym.rl.Trainer.update` on trajectories carrying the batch;
- TRL: ``GRPOTrainer._compute_loss`` (TRL's own loss, log-softmax and entropy) on the
  same ids, then ``backward``, ``clip_grad_norm_`` and a step of the optimizer TRL's
  trainer creates (``create_optimizer``: fused AdamW by default); fp32 and without
  activation checkpointing (TRL's defaults are bf16 and checkpointing), as ours runs.

The timed updates alternate between the two processes (ours, TRL, ours, TRL, ...: one
runs while the other waits), so a change of load on the machine hits both sides alike;
tokens/s is B x C over the median update time of each side.

Models: a tiny Llama built locally, and SmolLM2-135M (the embedded default model,
``agentgym.policies.models.default_model_path()``). The last line reads
``ours_tokens_per_s=X trl_tokens_per_s=Y ratio=Z peak_rss_ratio=W`` (ratio = ours/TRL
throughput, peak_rss_ratio = ours/TRL peak resident memory, both on SmolLM2 when it ran,
else the tiny model). TRL lives in the ``bench`` extra: ``pip install -e .[bench]``.

Run: ``python bench/trainer.py`` (``--quick`` for a smaller batch; ``--models tiny``).
"""

from __future__ import annotations

import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from agentgym.config import cli_registry

ROOT = Path(__file__).resolve().parents[1]
REPLY = "@bench@ "  # marks the lines of the parent-child protocol


@dataclass
class Args:
    """Run both sides on each model and print the comparison."""

    models: list[str] = field(default_factory=lambda: ["tiny", "smollm2"])
    """Which models: tiny (built locally), smollm2 (the embedded default)."""
    batch: int = 8
    """Sequences per update (B)."""
    group: int = 4
    """Sequences per group (advantages are group-relative)."""
    prompt_tokens: int = 64
    """P: prompt tokens per sequence."""
    completion_tokens: int = 128
    """C: sampled tokens per sequence."""
    updates: int = 5
    """Timed updates per side (after one warm-up update); tokens/s uses the median."""
    quick: bool = False
    """Smaller batch (B=4, P=16, C=32, 3 updates)."""
    side: str = ""
    """Internal: run one side (ours|trl) on --model-path, driven over stdin/stdout."""
    model_path: str = ""
    """Internal: the model directory of --side."""


def _batch(args: Args, model, vocab: int):
    """Token ids, on-policy logprobs and group-relative advantages (seeded)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    b, p, c = args.batch, args.prompt_tokens, args.completion_tokens
    ids = torch.randint(3, vocab, (b, p + c), generator=gen)
    rewards = torch.rand(b, generator=gen).view(-1, args.group)
    centred = rewards - rewards.mean(1, keepdim=True)
    adv = (centred / (rewards.std(1, keepdim=True) + 1e-6)).view(-1)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[:, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    old = torch.cat([torch.zeros(b, 1), logp], dim=1)  # logprob of token t at index t
    return ids, old, adv


def _ours(args: Args, model, ids, old, adv):
    from agentgym.rl import TrainConfig, Trainer
    from agentgym.trajectory import TokenLedger, Trajectory, Turn

    p = args.prompt_tokens
    trajs = []
    for i in range(ids.shape[0]):
        led = TokenLedger()
        led.add_prompt(ids[i, :p].tolist())
        led.add_sampled(ids[i, p:].tolist(), old[i, p:].tolist())
        turn = Turn(action="", observation=[], reward=0.0)
        group = str(i // args.group)
        trajs.append(Trajectory(env_id="b", seed=i, group_id=group, turns=[turn], ledger=led))
    trainer = Trainer(model, TrainConfig(lr=1e-6, micro_batch_size=args.batch))
    advs = [float(a) for a in adv]

    def update():
        m = trainer.update(trajs, advs)
        assert m["perf/trained_samples"] == len(trajs), m  # every sequence trains

    return update


def _trl(args: Args, model, tokenizer, ids, old, adv):
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    p, c = args.prompt_tokens, args.completion_tokens
    config = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"),
        per_device_train_batch_size=args.batch,
        num_generations=args.group,
        max_completion_length=c,
        loss_type="bnpo",  # token mean over the batch, as ours by default
        beta=0.0,
        learning_rate=1e-6,
        report_to=[],
        use_cpu=True,
        bf16=False,
        # TRL defaults to activation checkpointing (recompute in backward: less memory,
        # more compute); ours keeps activations, so compare like with like.
        gradient_checkpointing=False,
        logging_steps=1000,
        save_strategy="no",
    )
    data = Dataset.from_dict({"prompt": ["x"] * args.batch})
    trl = GRPOTrainer(
        model=model,
        reward_funcs=[lambda completions, **kw: [0.0] * len(completions)],
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
    )
    model = trl.model
    model.train()
    trl.current_gradient_accumulation_steps = 1  # set by Trainer.train(); one micro-batch here
    opt = trl.create_optimizer()  # what TRL's trainer steps with (its args.optim)
    inputs = {
        "prompt_ids": ids[:, :p],
        "prompt_mask": torch.ones_like(ids[:, :p]),
        "completion_ids": ids[:, p:],
        "completion_mask": torch.ones_like(ids[:, p:]),
        "advantages": adv,
        "old_per_token_logps": old[:, p:],
        "num_items_in_batch": torch.tensor(float(args.batch * c)),
    }

    def update():
        opt.zero_grad(set_to_none=True)
        loss = trl._compute_loss(model, inputs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return update


def run_side(args: Args) -> None:
    """One side on one model, driven over stdin/stdout by the parent.

    Prints ``ready`` after the warm-up update; then each ``step`` line runs one timed
    update and prints its seconds; ``done`` prints the peak RSS (bytes) and exits.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(args.model_path)
    ids, old, adv = _batch(args, model, len(tokenizer))
    if args.side == "ours":
        update = _ours(args, model, ids, old, adv)
    else:
        update = _trl(args, model, tokenizer, ids, old, adv)
    update()  # warm-up
    print(f"{REPLY}ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "step":
            start = time.perf_counter()
            update()
            print(f"{REPLY}{time.perf_counter() - start}", flush=True)
        elif line.strip() == "done":
            break
    print(f"{REPLY}{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}", flush=True)


def _model_path(name: str) -> str:
    if name == "smollm2":
        from agentgym.policies.models import default_model_path

        return str(default_model_path())
    from agentgym.policies.tinymodels import build_tiny_chat_model

    path = Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "model"
    corpus = ["You are a helpful assistant.", "Say apple.", "The quick brown fox."]
    return str(build_tiny_chat_model(path, corpus=corpus, hidden_size=128, num_layers=4))


class _Side:
    """A ``--side`` subprocess: one line in, one line out, each read with a timeout."""

    def __init__(self, args: Args, side: str, path: str) -> None:
        cmd = [sys.executable, __file__, "--side", side, "--model-path", path]
        for f in ("batch", "group", "prompt_tokens", "completion_tokens"):
            cmd += [f"--{f.replace('_', '-')}", str(getattr(args, f))]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        self.side, self.log = side, tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def ask(self, line: str | None, timeout: float = 1800.0) -> str:
        """Send ``line`` (if any) and return the next line the side prints."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if line is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:  # skip anything else the libraries print on stdout
            left = deadline - time.monotonic()
            ready = left > 0 and select.select([self.proc.stdout], [], [], left)[0]
            reply = self.proc.stdout.readline() if ready else ""
            if not reply:
                self.proc.kill()
                self.log.seek(0)
                why = "timed out" if not ready else f"exited with {self.proc.wait()}"
                raise SystemExit(f"{self.side} side {why}:\n{self.log.read()[-3000:]}")
            if reply.startswith(REPLY):
                return reply[len(REPLY) :].strip()


def _compare(args: Args, path: str) -> tuple[dict[str, float], dict[str, float]]:
    """Both sides on one model, timed updates alternated; (ours, trl) figures."""
    sides = [_Side(args, "ours", path), _Side(args, "trl", path)]
    for side in sides:
        assert side.ask(None) == "ready"
    seconds: list[list[float]] = [[], []]
    for _ in range(args.updates):
        for k, side in enumerate(sides):
            seconds[k].append(float(side.ask("step")))
    tokens = args.batch * args.completion_tokens
    out = []
    for k, side in enumerate(sides):
        rss = float(side.ask("done"))
        side.proc.wait(timeout=60)
        typical = statistics.median(seconds[k])  # a burst of load elsewhere skews one update
        out.append({"tokens_per_s": tokens / typical, "peak_rss": rss, "seconds": seconds[k]})
    return out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    args = tyro.cli(Args, args=argv, description=__doc__, registry=cli_registry())
    if args.side:
        run_side(args)
        return 0
    if args.quick:
        args.batch, args.prompt_tokens, args.completion_tokens, args.updates = 4, 16, 32, 3
    last = None
    for name in args.models:
        path = _model_path(name)
        ours, trl = _compare(args, path)
        ratio = ours["tokens_per_s"] / trl["tokens_per_s"]
        mem = ours["peak_rss"] / trl["peak_rss"]
        print(
            f"model={name} B={args.batch} P={args.prompt_tokens} C={args.completion_tokens} "
            f"ours_tokens_per_s={ours['tokens_per_s']:.1f} "
            f"trl_tokens_per_s={trl['tokens_per_s']:.1f} ratio={ratio:.3f} "
            f"ours_peak_rss_mib={ours['peak_rss'] / 2**20:.0f} "
            f"trl_peak_rss_mib={trl['peak_rss'] / 2**20:.0f}",
            flush=True,
        )
        last = (ours, trl, ratio, mem)
    if last is None:
        return 2
    ours, trl, ratio, mem = last
    print(
        f"ours_tokens_per_s={ours['tokens_per_s']:.1f} trl_tokens_per_s={trl['tokens_per_s']:.1f} "
        f"ratio={ratio:.3f} peak_rss_ratio={mem:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
