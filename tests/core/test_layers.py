"""The import rule: the env contract stays light (no torch, no transformers)."""

import subprocess
import sys

CODE = """
import sys
import agentgym
env = agentgym.make("agentgym/Wordle-v0")
env.reset(seed=0)
env.step("<guess>crane</guess>")
import agentgym.rl, agentgym.rollout, agentgym.tools, agentgym.policies
heavy = sorted(m for m in ("torch", "transformers", "vllm", "ray") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_making_and_stepping_an_env_imports_no_heavy_package():
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "none", out.stdout + out.stderr
