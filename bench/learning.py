"""The proof that it learns: GRPO on a tiny locally built model.

The recipe lives in :mod:`agentgym.learning` (``agentgym demo`` runs it too); this is
its command line. The last line reads ``success_before=X success_after=Y steps=N
seconds=S``. Run: ``python bench/learning.py`` (``--quick`` is the smaller version the
tests run); every field of ``LearningConfig`` is a flag (``--seed 3``, ``--grpo-steps 60``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from agentgym.learning import QUICK, LearningConfig, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="the smaller version run by the tests")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    for f in dataclasses.fields(LearningConfig):
        as_json = isinstance(f.default, bool) or f.name == "env_kwargs"
        conv = json.loads if as_json else type(f.default)
        p.add_argument("--" + f.name.replace("_", "-"), type=conv, default=None)
    args = p.parse_args(argv)
    values = dict(QUICK) if args.quick else {}
    values |= {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(LearningConfig)
        if getattr(args, f.name) is not None
    }
    res = run(LearningConfig(**values), progress=not args.no_progress)
    sys.stdout.write(
        f"success_before={res['success_before']:.3f} success_after={res['success_after']:.3f} "
        f"steps={res['steps']} seconds={res['seconds']:.1f}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
