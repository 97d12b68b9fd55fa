#!/usr/bin/env bash
# Paper-scale racam reproduction on an offline GPU machine, in calls of at most 10 minutes.
#
# Every call runs `racam reproduce` (or, with --choose-lr, the learning-rate choice on validation
# images) for at most --budget seconds into a state folder on that machine, then packs the
# reports, JSON, figures and logs into $OUT/paper-run.tgz. Stages finished by one call (and the
# classifier's last.pt, written every epoch) are reused by the next call on the same machine, so
# two back-to-back calls continue one run; a fresh machine starts again. docs/gpu.md has the steps.
#
#   bash .device/run bash scripts/gpu/paper_run.sh [--config ksdd-paper-offline] [--budget 500]
#        [--state /tmp/racam-paper] [--set KEY=VALUE]...
#   bash .device/run bash scripts/gpu/paper_run.sh --choose-lr "0.003 0.01 0.03" [--seeds "0"]
#   bash scripts/gpu/paper_run.sh --cpu-dry-run      # here: the same code paths, tiny and on CPU
#
# Prints "STATUS: complete" or "STATUS: incomplete (call again)" last.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
config=ksdd-paper-offline
budget=500
state=${RACAM_PAPER_STATE:-/tmp/racam-paper}
lrs=""
seeds="0"
dry=0
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --state) state=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --choose-lr) lrs=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --cpu-dry-run) dry=1; shift ;;
    *) echo "paper_run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
py=${PYTHON:-python3}
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [ "$dry" = 1 ]; then
  # tiny sizes on the CPU: every stage of the reproduction, in a few minutes
  state=${RACAM_PAPER_STATE:-$root/runs/paper-dry-run}
  sets+=(--set device=cpu --set "data.size=[64,160]" --set "data.folds=[0]"
         --set classifier.epochs=2 --set classifier.samples_per_epoch=16
         --set "reproduce.seeds=[0]" --set "reproduce.methods=[gradcam,layercam,racam]"
         --set "reproduce.plugin_methods=[layercam]" --set "reproduce.deltas=[0,50]"
         --set "reproduce.supervised_archs=[unet]" --set "reproduce.weightings=[element]"
         --set "reproduce.fgbp_heads=[sample]" --set reproduce.bootstrap_resamples=100
         --set reproduce.figure_images=1 --set segmentation.epochs=1
         --set segmentation.samples_per_epoch=8 --set "segmentation.crop=[64,64]"
         --set segmentation.batch_size=4 --set cam.batch_size=8)
  if [ "$config" = ksdd-paper-offline ]; then
    # full-width VGG16 is too slow for a CPU dry run: the same layout at width 16
    sets+=(--set classifier.backbone=vgg16_narrow --set classifier.width=16)
  fi
fi
out=${OUT:-$state/out}
mkdir -p "$state" "$out"
call=$(( $(ls "$state"/call-*.log 2>/dev/null | wc -l) + 1 ))
log="$state/call-$call.log"
{
  echo "== call $call, $(date -u +%FT%TZ), config $config, budget ${budget}s, git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "== overrides: ${sets[*]:-none}"
  "$py" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available() and torch.cuda.get_device_name(0))'
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
} 2>&1 | tee "$log"

if [ -n "$lrs" ]; then
  # learning rate on validation images of fold 0 (never the test fold), seeds as given
  # shellcheck disable=SC2086
  timeout --signal=INT --kill-after=30 "$budget" "$py" experiments/classifier_stability.py \
    "$config" --out "$state/lr-choice" --fold 0 --seeds $seeds --variants config --lrs $lrs \
    "${sets[@]}" 2>&1 | tee -a "$log"
else
  timeout --signal=INT --kill-after=30 "$budget" "$py" -m racam reproduce "$config" \
    --out "$state/run" --quiet "${sets[@]}" 2>&1 | tee -a "$log"
fi
rc=${PIPESTATUS[0]}

if [ "$rc" = 0 ]; then
  status="STATUS: complete (call $call)"
elif [ "$rc" = 124 ] || [ "$rc" = 130 ] || [ "$rc" = 137 ]; then
  status="STATUS: incomplete (call again: stages finished so far are kept in $state)"
  rc=0
else
  status="STATUS: failed with exit code $rc (see $log)"
fi
echo "== $(date -u +%FT%TZ) $status" >> "$log"

# what comes back: reports, JSON, the report's figures and the logs (no checkpoints, no maps)
( cd "$state" && find . \( -name '*.json' -o -name '*.md' -o -name '*.html' -o -name '*.log' \
    -o -path './run/figures/*.png' \) -type f -print0 \
  | tar --null -czf "$out/paper-run.tgz" -T - )
echo "packed $(tar -tzf "$out/paper-run.tgz" | wc -l) files into $out/paper-run.tgz"
echo "$status"
exit "$rc"
