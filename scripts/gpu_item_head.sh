#!/usr/bin/env bash
# Train test-like item heads on a lent GPU machine from a bundle made by scripts/gpu_bundle.py (the machine has
# torch but no model hub, no recbole and no pydantic; the bundle's a/whl carries the missing packages).
#
#   bash scripts/gpu_item_head.sh BUNDLE SECONDS CONFIG_JSON [CONFIG_JSON...]
#
# Each config is trained in turn (`scripts/item_head.py train --testlike`), while SECONDS last; each finished head
# folder comes back as $OUT/<folder>.tar, with its manifest (training time per window, losses, device). FRESH=1
# (only in a throwaway copy of the tree) removes the committed heads first, so that the default config is trained.
# DEVICE (default cuda), PY (default python3) and NO_PIP=1 (packages already there) let it run on a CPU to test.
set -u
bundle=$1; budget=$2; shift 2
out=${OUT:-/tmp/gpu-item-head}; mkdir -p "$out"
py=${PY:-python3}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TIDE_HOME=${TIDE_HOME:-/tmp/tide}
start=$SECONDS
site=/tmp/gpu-site
if [ -z "${NO_PIP:-}" ]; then
  $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $site "$bundle"/a/whl/*.whl || exit 1
fi
export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
$py -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
if [ ! -f "$TIDE_HOME/models/gemma-3-270m/model.safetensors" ]; then
  $py scripts/gpu_bundle.py unpack "$bundle" "$TIDE_HOME" $site || exit 1
fi
echo "ready after $((SECONDS - start)) s"
# a throwaway copy of the tree (the device's): the committed heads go, so that the default config is trained, not found
if [ -n "${FRESH:-}" ]; then rm -rf models/gemma-3-270m-item-head-*; fi
for cfg in "$@"; do
  left=$((budget - (SECONDS - start)))
  if [ $left -lt 60 ]; then echo "SKIP $cfg (${left} s left)"; continue; fi
  t0=$SECONDS
  timeout $left $py scripts/item_head.py train --testlike --device "${DEVICE:-cuda}" --config "$cfg" \
    >"$out/last.out" 2>>"$out/train.err"
  rc=$?
  folder=$(tail -1 "$out/last.out")
  echo "CONFIG $cfg rc $rc seconds $((SECONDS - t0)) folder $folder"
  if [ $rc -eq 0 ] && [ -d "$folder" ]; then
    tar -C "$(dirname "$folder")" -cf "$out/$(basename "$folder").tar" "$(basename "$folder")"
  fi
done
rm -f "$out/last.out"
echo "EXIT after $((SECONDS - start)) s"
