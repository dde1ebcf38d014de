"""The ``agentgym`` command line (``agentgym --help`` lists the commands).

Each command is a dataclass whose fields are its flags (parsed with tyro, so
``agentgym COMMAND --help`` shows every field's docstring and default); nested
configs give dotted flags, ``--collect.group-size 4``, mirroring the config files
that ``--config FILE`` (TOML, YAML or JSON) reads. This module parses and wires;
the work happens in the library.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tyro
from tyro.conf import Positional

from agentgym.config import cli_registry
from agentgym.console import echo
from agentgym.errors import AgentGymError, ConfigError
from agentgym.recipes.sft import SFTConfig
from agentgym.rl.config import TrainConfig
from agentgym.rollout.collector import CollectConfig

__all__ = ["main", "COMMANDS", "parse_command"]


# ----------------------------------------------------------------------------- list
@dataclass
class List:
    """List registered environments (built-in and plugins) with their reward components."""

    def run(self) -> int:
        """Print one line per env; plugins that failed to load are reported at the end."""
        import agentgym

        errors = agentgym.load_plugins()
        echo(f"{'id':32} {'max_turns':>9}  reward components")
        for env_id in agentgym.list_envs():
            s = agentgym.spec(env_id)
            try:
                comps = ", ".join(_entry_class(s.entry_point).reward_spec.components)
            except Exception as e:  # show the env anyway
                comps = f"(cannot load: {e})"
            turns = s.max_episode_steps if s.max_episode_steps is not None else "-"
            echo(f"{env_id:32} {turns!s:>9}  {comps}")
        for name, err in errors.items():
            echo(f"plugin {name} failed to load: {err}")
        return 0


def _entry_class(entry_point: Any) -> Any:
    import importlib

    if isinstance(entry_point, str):
        mod, _, attr = entry_point.partition(":")
        return getattr(importlib.import_module(mod), attr)
    return entry_point


# ----------------------------------------------------------------------------- play
@dataclass
class Play:
    """Play an environment yourself: type an action at the '>' prompt; :quit leaves."""

    env: Positional[str]
    """Environment id, e.g. agentgym/Wordle-v0."""
    seed: int = 0
    """Task seed."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Env constructor kwargs as a JSON object."""

    def run(self) -> int:
        """Play until the episode ends or input ends."""
        import agentgym
        from agentgym.core import format_transcript

        env = agentgym.make(self.env, **self.env_kwargs)
        obs, _ = env.reset(seed=self.seed)
        echo(format_transcript(obs))
        total, turn = 0.0, 0
        while True:
            sys.stdout.write("\n> ")
            sys.stdout.flush()
            line = sys.stdin.readline()
            if not line or line.strip() in (":q", ":quit"):
                echo("\nbye")
                return 0
            obs, reward, terminated, truncated, info = env.step(line.rstrip("\n"))
            turn += 1
            total += float(reward)
            echo(format_transcript(obs))
            comps = ", ".join(f"{k}={v:+.3g}" for k, v in info.get("reward_components", {}).items())
            echo(f"(turn {turn}: reward {reward:+.3f} [{comps}], total {total:+.3f})")
            if terminated or truncated:
                why = "terminated" if terminated else "truncated (turn limit)"
                outcome, success = info.get("outcome"), info.get("success")
                echo(f"\nEpisode {why}: outcome={outcome} success={success}")
                return 0


# ----------------------------------------------------------------------------- rollout
@dataclass
class Rollout:
    """Collect trajectories: N tasks x G samples, one JSON line each (token ledger included)."""

    env: Positional[str]
    """Environment id."""
    policy: str = "default"
    """'default' (embedded SmolLM2-135M-Instruct), 'hf:PATH_OR_NAME', 'vllm:PATH' (in-process
    vLLM), 'openai:URL1[,URL2...][@TOKENIZER]' (OpenAI-compatible servers: vLLM or `agentgym
    serve`; each episode sticks to one), 'random:word1,word2[@TOKENIZER]', or a plugin's kind."""
    n: int = 8
    """Number of tasks (seeds seed .. seed+n-1)."""
    seed: int = 0
    """First task seed; also the sampler's seed unless collect.sampling.seed is set."""
    out: str = "runs/rollout.jsonl"
    """Output JSONL file."""
    device: str | None = None
    """torch device for local models (default: cuda if present, else cpu)."""
    collect: CollectConfig = field(default_factory=CollectConfig)
    """How to collect: group size, limits, env kwargs, workers, timeouts, retries, sampling."""
    resume: bool = False
    """Keep the trajectories --out already holds and collect only the missing ones."""
    backend: str | None = None
    """Where env steps run: thread, process or ray (sets collect.env_backend)."""

    def run(self) -> int:
        """Roll out and print a one-line summary."""
        from agentgym.policies import make_policy
        from agentgym.rollout import Collector, rollout_metrics

        policy = make_policy(self.policy, self.device, self.seed)
        config = self.collect
        if self.backend is not None:
            config = dataclasses.replace(config, env_backend=self.backend)
        if config.sampling.seed is None:
            config = dataclasses.replace(
                config, sampling=dataclasses.replace(config.sampling, seed=self.seed)
            )
        seeds = list(range(self.seed, self.seed + self.n))
        trajs = Collector(policy, config).collect(self.env, seeds, out=self.out, resume=self.resume)
        m = rollout_metrics(trajs)
        echo(
            f"episodes={len(trajs)} success_rate={m['reward/success_rate']:.3f} "
            f"mean_return={m['reward/total_mean']:.3f} "
            f"env_errors={int(m['rollout/env_errors'])} "
            f"infra_errors={int(m['rollout/infra_errors'])}"
        )
        echo(f"trajectories written to {self.out}")
        return 0


# ----------------------------------------------------------------------------- train
def run_train(config: TrainConfig) -> int:
    """Train with :func:`agentgym.rl.train` and print where the metrics went."""
    from agentgym.rl import train

    if config.resume is not None:  # the run's own config; only the directory comes from here
        saved = Path(config.resume) / "config.json"
        if not saved.exists():
            raise ConfigError(f"--resume {config.resume}: no config.json there; is it a run?")
        config = dataclasses.replace(
            TrainConfig.from_dict(json.loads(saved.read_text())), resume=config.resume
        )
    result = train(config)
    last = result.history[-1] if result.history else {}
    rate = last.get("reward/success_rate", 0.0)
    summary = f"steps={len(result.history)} last_success_rate={rate:.3f}"
    if result.success_before is not None:
        summary += f" eval_before={result.success_before:.3f}"
        summary += f" eval_after={result.success_after:.3f}"
    echo(summary)
    echo(f"metrics: {result.out_dir / 'metrics.jsonl'}")
    return 0


# ----------------------------------------------------------------------------- sft
def run_sft_command(config: Any) -> int:
    """Fine-tune on demonstrations with :func:`agentgym.recipes.sft.run_sft`; print figures."""
    from agentgym.recipes.sft import run_sft

    figures = run_sft(config)
    echo(" ".join(f"{k}={v:.3f}" for k, v in figures.items()))
    echo(f"demonstrations: {Path(config.out_dir) / 'demonstrations.jsonl'}")
    return 0


# ----------------------------------------------------------------------------- view
@dataclass
class View:
    """Print trajectories as conversations, or write a self-contained HTML report.

    A training run directory (metrics.jsonl + rollouts/) always gets the HTML report
    (default RUN_DIR/report.html), with reward and success per step.
    """

    file: Positional[str]
    """JSONL file written by rollout/train, or a training run directory."""
    index: int | None = None
    """Only the trajectory at this index (terminal output)."""
    html: str | None = None
    """Write the HTML report here instead of printing (one static file, nothing fetched)."""
    tokenizer: str | None = None
    """Tokenizer path/name to show token text in the report's token view (default: ids)."""

    def run(self) -> int:
        """Print each trajectory with its status, outcome and return (or write the report)."""
        from agentgym.core import format_transcript
        from agentgym.trajectory import iter_jsonl

        if self.html is not None or Path(self.file).is_dir():
            from agentgym.viewer import write_report

            out = self.html or str(Path(self.file) / "report.html")
            path = write_report(self.file, out, tokenizer=self.tokenizer)
            echo(f"report written to {path} (open it in a browser; it needs no server)")
            return 0

        for i, t in enumerate(iter_jsonl(self.file)):
            if self.index is not None and i != self.index:
                continue
            echo(
                f"=== #{i} {t.env_id} seed={t.seed} sample={t.sample_index} status={t.status} "
                f"outcome={t.outcome} success={t.success} return={t.total_reward:.3f}"
            )
            if t.error:
                echo(f"error: {t.error}")
            echo(format_transcript(t.messages))
        return 0


# ----------------------------------------------------------------------------- plot
@dataclass
class Plot:
    """Write PNG training curves of a run (reward, success, KL, entropy, |dlogprob|, tokens/s)."""

    run_dir: Positional[str]
    """Directory of an agentgym train run (holds metrics.jsonl)."""
    out: str | None = None
    """Where the PNGs go (default: RUN_DIR/plots)."""

    def run(self) -> int:
        """Plot with :func:`agentgym.rl.plot.plot_run` and list the files."""
        from agentgym.rl.plot import plot_run

        for path in plot_run(self.run_dir, self.out):
            echo(str(path))
        return 0


# ----------------------------------------------------------------------------- export
@dataclass
class Export:
    """Export trajectories as a Hugging Face dataset, parquet, or SFT chat JSONL.

    hf/parquet: one row per training sample with the ledger columns (schema in
    agentgym.data.export); sft: {"messages": [...]} per successful trajectory.
    """

    file: Positional[str]
    """Trajectories JSONL (rollout output) or a training run directory."""
    to: Literal["hf", "parquet", "sft"] = "parquet"
    """Output format."""
    out: str | None = None
    """Output path (default: next to FILE: .parquet, _hf/ or .sft.jsonl)."""

    def run(self) -> int:
        """Export and say how many rows went where."""
        from agentgym.data import export, load_source

        src = load_source(self.file)
        stem = src.path / "export" if src.is_run else src.path.with_suffix("")
        default = {"hf": f"{stem}_hf", "parquet": f"{stem}.parquet", "sft": f"{stem}.sft.jsonl"}
        out = self.out or default[self.to]
        n = export(src.trajectories, out, self.to)
        echo(f"{n} {'records' if self.to == 'sft' else 'rows'} written to {out} ({self.to})")
        return 0


# ----------------------------------------------------------------------------- serve
@dataclass
class Serve:
    """Serve a transformers model over the OpenAI completions API (vLLM dialect).

    POST /v1/completions and GET /v1/models: token-id prompts, sampled token ids and
    their logprobs back (return_token_ids / return_tokens_as_token_ids), stop_token_ids
    kept; concurrent requests are batched. Roll out against it with --policy openai:URL.
    Started on a model directory, it also reloads the weights found there on
    POST /collective_rpc {"method": "reload_weights"} (vLLM's dev-mode endpoint), so
    `agentgym train --sampler openai:URL --sync-dir DIR` can train against it.
    """

    model: Positional[str]
    """'default' (embedded SmolLM2) or a model path/name."""
    host: str = "127.0.0.1"
    """Interface to bind."""
    port: int = 8000
    """TCP port."""
    batch_window_ms: float = 5.0
    """How long a batch waits to fill."""
    device: str | None = None
    """torch device (default: cuda if present)."""
    token: str | None = None
    """Bearer token clients must send (default: $AGENTGYM_TOKEN; prefer the variable, a flag
    shows in `ps`). Optional on 127.0.0.1, required on any other --host."""

    def run(self) -> int:
        """Serve until interrupted."""
        from agentgym.policies import load_policy
        from agentgym.policies.server import PolicyServer
        from agentgym.remote.auth import check_bind, resolve_token

        token = resolve_token(self.token)
        check_bind(self.host, token)  # before the model loads: fail fast
        policy = load_policy(self.model, self.device)
        name = str(policy.model.name_or_path) if self.model == "default" else self.model
        model_dir = str(policy.model.name_or_path)
        server = PolicyServer(
            policy,
            model_name=name,
            host=self.host,
            port=self.port,
            batch_window_s=self.batch_window_ms / 1000,
            token=token,
            model_dir=model_dir if Path(model_dir).is_dir() else None,
        )
        echo(f"agentgym serve: {name} at {server.url} (POST /completions, GET /models); Ctrl-C")
        server.serve_forever()
        return 0


# ----------------------------------------------------------------------------- serve-env
@dataclass
class ServeEnv:
    """Serve registered environments over HTTP, one env per session.

    Clients use agentgym.make("remote:http://HOST:PORT/ENV_ID") (e.g. --collect on another
    machine); the protocol is in agentgym.remote.protocol.
    """

    envs: Positional[list[str]] = field(default_factory=list)
    """Env ids clients may make (default: every registered env)."""
    host: str = "127.0.0.1"
    """Interface to bind; anything but loopback needs a token."""
    port: int = 8001
    """TCP port."""
    token: str | None = None
    """Bearer token clients must send (default: $AGENTGYM_TOKEN; prefer the variable, a flag
    shows in `ps`). Optional on 127.0.0.1, required on any other --host."""
    max_sessions: int = 64
    """Most sessions (env instances) alive at once; more are refused with 503."""
    idle_timeout_s: float = 300.0
    """A session unused this long is closed."""

    def run(self) -> int:
        """Serve until interrupted."""
        from agentgym.remote import EnvServer
        from agentgym.remote.auth import resolve_token

        server = EnvServer(
            self.host,
            self.port,
            token=resolve_token(self.token),
            max_sessions=self.max_sessions,
            idle_timeout_s=self.idle_timeout_s,
            env_ids=self.envs or None,
        )
        what = ", ".join(self.envs) if self.envs else "every registered env"
        echo(f"agentgym serve-env: {what} at {server.url} (make('remote:{server.url}/ENV_ID'))")
        echo("Ctrl-C stops")
        server.serve_forever()
        return 0


# ----------------------------------------------------------------------------- demo
@dataclass
class Demo:
    """The embedded default model learns a tool env: base, warm start, then GRPO + LoRA.

    SmolLM2-135M-Instruct on agentgym/Lookup-v0: held-out greedy success of the base
    model, after a short SFT warm start on expert demonstrations, and after GRPO with
    LoRA; the last line sums it up.
    """

    grpo_steps: int = 6
    """GRPO steps."""
    sft_epochs: int = 3
    """Optimizer steps of the SFT warm start."""
    sft_demos: int = 4
    """Expert demonstrations of the warm start."""
    eval_tasks: int = 16
    """Held-out tasks of each evaluation."""
    out_dir: str = "runs/demo"
    """Where demonstrations, rollouts, metrics and summary.json go."""

    def run(self) -> int:
        """Run :func:`agentgym.recipes.demo.run_demo`."""
        from agentgym.recipes.demo import DemoConfig, run_demo

        run_demo(
            DemoConfig(
                grpo_steps=self.grpo_steps,
                sft_epochs=self.sft_epochs,
                sft_demos=self.sft_demos,
                eval_tasks=self.eval_tasks,
                out_dir=self.out_dir,
            )
        )
        return 0


# ----------------------------------------------------------------------------- dispatch
#: Command name -> (the dataclass its flags fill, what runs it).
COMMANDS: dict[str, tuple[type, Any]] = {
    "list": (List, List.run),
    "play": (Play, Play.run),
    "rollout": (Rollout, Rollout.run),
    "train": (TrainConfig, run_train),
    "sft": (SFTConfig, run_sft_command),
    "view": (View, View.run),
    "plot": (Plot, Plot.run),
    "export": (Export, Export.run),
    "serve": (Serve, Serve.run),
    "serve-env": (ServeEnv, ServeEnv.run),
    "demo": (Demo, Demo.run),
}
_CONFIG_FILES = {"rollout", "train", "sft", "demo"}
_HELP = {
    "train": "GRPO/RLOO training; flags mirror TrainConfig (--config FILE.toml|.yaml|.json)",
    "sft": "supervised fine-tuning on expert demonstrations, or on the model's own "
    "successes (--source self: rejection sampling)",
    "sandbox": "the code sandbox: check, run FILE.py, build-image",
}


def _summary(name: str) -> str:
    if name in _HELP:
        return _HELP[name]
    doc = (COMMANDS[name][0].__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split()).rstrip(".")


def _overview() -> str:
    lines = [
        "usage: agentgym COMMAND [--help] [FLAGS]",
        "",
        "Multi-turn environments, rollouts and RL training for LLM agents.",
        "",
        "commands:",
    ]
    lines += [f"  {name:9} {_summary(name)}" for name in [*COMMANDS, "sandbox"]]
    lines += [
        "",
        "Examples:",
        "  agentgym list",
        "  agentgym play agentgym/Wordle-v0",
        "  agentgym rollout agentgym/FrozenLake-v0 --policy default --n 8 "
        "--collect.group-size 4 --out runs/fl.jsonl",
        "  agentgym train --env-id agentgym/FrozenLake-v0 --steps 5 --config train.toml",
        "",
        "Run 'agentgym COMMAND --help' for a command's flags.",
    ]
    return "\n".join(lines)


def _pop_config(args: list[str]) -> tuple[str | None, list[str]]:
    """Take ``--config FILE`` (or ``--config=FILE``) out of ``args``."""
    rest, path = [], None
    it = iter(args)
    for a in it:
        if a == "--config":
            path = next(it, None)
            if path is None:
                raise ConfigError("--config needs a file: --config FILE.toml|.yaml|.json")
        elif a.startswith("--config="):
            path = a.split("=", 1)[1]
        else:
            rest.append(a)
    return path, rest


def parse_command(argv: list[str]) -> tuple[str, Any]:
    """Parse ``argv`` (without the program name) into (command name, its dataclass).

    Raises:
        ConfigError: unknown command (with a "did you mean") or an unreadable config file.
        SystemExit: ``--help`` (code 0) or bad flags (code 2), as argparse does.
    """
    from agentgym.config import load_config

    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, [*COMMANDS, "sandbox"], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown command {name!r}.{hint} Run 'agentgym --help' for the list.")
    cls = COMMANDS[name][0]
    default: Any = None
    if name in _CONFIG_FILES:
        path, rest = _pop_config(rest)
        if path is not None:
            default = load_config(cls, path)
    kwargs: dict[str, Any] = {"default": default} if default is not None else {}
    value = tyro.cli(
        cls,
        args=rest,
        prog=f"agentgym {name}",
        description=(cls.__doc__ or "").split("\n\n    Example")[0],
        registry=cli_registry(),
        **kwargs,
    )
    return name, value


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``agentgym`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        echo(_overview())
        return 0 if argv else 2
    try:
        if argv[0] == "sandbox":
            from agentgym.sandbox.cli import main as sandbox_main

            return int(sandbox_main(argv))
        name, value = parse_command(argv)
        return int(COMMANDS[name][1](value) or 0)
    except AgentGymError as e:
        echo(f"agentgym {argv[0]}: error: {e}", err=True)
        return 2
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
