#!/usr/bin/env bash
# GPU check of issue 12 in one script: YOLO11 training throughput (spinexr adapter vs. Ultralytics'
# trainer, benchmarks/bench_yolo_parity.py), the EMA update (benchmarks/bench_ema.py, log only) and
# inference throughput (benchmarks/bench_infer.py) on
# a phantom of 1,024 train / 128 test images converted at 1024 px. Sized to finish within about
# 6 minutes on one H200 (16 cores); see docs/gpu.md.
#
#   bash benchmarks/gpu_check.sh OUT_DIR                    # on the GPU machine
#   GPU_CHECK_SMOKE=1 bash benchmarks/gpu_check.sh OUT_DIR  # CPU smoke run: same steps, tiny sizes
#
# Writes to OUT_DIR (8 files at most): machine.json, parity.json, infer.json, steps.tsv,
# summary.json, summary.md and gpu_check.log (every step's output). Each step runs under
# `timeout`, limited also by what is left of the whole budget (GPU_CHECK_BUDGET_S); a failed or
# timed-out step is recorded in steps.tsv and the script goes on. Working data: GPU_CHECK_WORK
# (default /tmp/gpu_check); the converted phantom there is reused by a rerun with the same sizes.
#
# On the GPU machine the stack comes from .gpu/ (a copy of ../shared/gpu: wheels installed offline
# by .gpu/run.sh, which also sets YOLO_OFFLINE=1); without .gpu/ the current python3 is used.
# Ultralytics' AMP check (it downloads weights) is skipped inside bench_yolo_parity.py.
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "usage: [GPU_CHECK_SMOKE=1] bash benchmarks/gpu_check.sh OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
out=$(cd "$1" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 2
work=${GPU_CHECK_WORK:-/tmp/gpu_check}
mkdir -p "$work"
log=$out/gpu_check.log
steps=$out/steps.tsv
: >"$log"
: >"$steps"
smoke=${GPU_CHECK_SMOKE:-0}
# nothing may be downloaded (.gpu/run.sh sets these too)
export YOLO_OFFLINE=1 YOLO_CONFIG_DIR=$work/ultralytics_cfg MPLBACKEND=Agg PYTHONUNBUFFERED=1

# ------------------------------------------------------------------ sizes (the only mode switch)
if [ "$smoke" = 1 ]; then
  mode=cpu-smoke
  budget=${GPU_CHECK_BUDGET_S:-900}
  n_train=16 n_test=8 scale=0.1 png=256 jobs=2
  epochs=${GPU_CHECK_EPOCHS:-1}
  parity_args=(--size n --imgsz 128 --batch 8 --workers 1 --device cpu)
  infer_args=(--size n --imgsz 128 --batch 8 --workers 1 --device cpu)
  infer_min=32          # at least this many files: the phantom's PNGs, hard-linked again as needed
  infer_max=300 reserve_parity=300  # inference: at most infer_max s, leaving reserve_parity
  ema_device=cpu
  if [ -n "${PYTHON:-}" ]; then py=("$PYTHON")
  elif [ -x .venv/bin/python ]; then py=(.venv/bin/python)
  else py=(python3); fi
else
  mode=gpu
  budget=${GPU_CHECK_BUDGET_S:-345}
  n_train=1024 n_test=128 scale=0.4 png=1024 jobs=$(nproc)
  epochs=${GPU_CHECK_EPOCHS:-3}
  parity_args=(--size l --imgsz 640 --batch 32 --workers 16 --device 0 --amp)
  infer_args=(--size l --imgsz 640 --batch 32 --workers 16 --device cuda --fp16 --dicoms 128)
  infer_min=2048
  infer_max=100 reserve_parity=180
  ema_device=cuda
  if [ -f .gpu/run.sh ]; then py=(bash .gpu/run.sh python3)
  else py=("${PYTHON:-python3}"); fi
fi
# The GPU plan (from the reference figures of 2026-11-30, NOT yet measured as a whole): setup
# ~15 s, phantom ~30 s, conversion ~40 s, inference ~45 s, training comparison (3 epochs) the rest,
# at least 180 s. Each earlier step keeps the later steps' share (the RESERVE of `step`).
start=$(date +%s)
deadline=$((start + budget))

# step NAME MAX_S RESERVE_S CMD...: run CMD under `timeout min(MAX_S, time left - RESERVE_S)`,
# its output into the log (and stdout); one row in steps.tsv. Returns CMD's status.
step() {
  local name=$1 max=$2 reserve=$3
  shift 3
  local left=$((deadline - $(date +%s) - reserve))
  local limit=$((max < left ? max : left))
  if [ "$limit" -lt 5 ]; then
    echo "=== [$name] skipped: no time left in the ${budget}s budget" | tee -a "$log"
    printf '%s\tskipped\t-1\t0\t%s\n' "$name" "$limit" >>"$steps"
    return 1
  fi
  echo "=== [$name] $(date +%T) limit ${limit}s: $*" | tee -a "$log"
  local t0 rc status
  t0=$(date +%s)
  timeout -k 15 "$limit" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) status=ok ;;
    124|137) status=timeout ;;
    *) status=failed ;;
  esac
  echo "=== [$name] $status (rc $rc) in $(($(date +%s) - t0))s" | tee -a "$log"
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$(($(date +%s) - t0))" "$limit" >>"$steps"
  return "$rc"
}

skip() {  # skip NAME WHY
  echo "=== [$1] skipped: $2" | tee -a "$log"
  printf '%s\tskipped\t-1\t0\t0\n' "$1" >>"$steps"
}

# ------------------------------------------------------------------ 1. stack + machine
# (through .gpu/run.sh, the first python call installs the wheels offline)
step setup 120 295 "${py[@]}" - "$out/machine.json" "$mode" <<'EOF'
import json, platform, subprocess, sys, time
import cv2, mmcv, mmdet, mmengine, numpy, torch, ultralytics
import spinexr  # noqa: F401  (the project imports under this stack)
info = dict(mode=sys.argv[2], date=time.strftime('%Y-%m-%d %H:%M:%S %Z'), host=platform.node(),
            python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(), cuda_available=torch.cuda.is_available(),
            numpy=numpy.__version__, opencv=cv2.__version__, mmcv=mmcv.__version__,
            mmengine=mmengine.__version__, mmdet=mmdet.__version__,
            ultralytics=ultralytics.__version__, cpu_count=__import__('os').cpu_count())
if torch.cuda.is_available():
    info['gpu'] = torch.cuda.get_device_name(0)
    try:
        info['nvidia_smi'] = subprocess.run(
            ['nvidia-smi', '--query-gpu=name,driver_version,memory.total,clocks.max.sm,'
             'power.limit', '--format=csv,noheader'], capture_output=True, text=True,
            timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError) as err:
        info['nvidia_smi'] = f'not run: {err}'
else:
    info['gpu'] = 'none (cpu)'
json.dump(info, open(sys.argv[1], 'w'), indent=1)
print(json.dumps(info, indent=1))
EOF
setup_rc=$?

# ------------------------------------------------------------------ 2. phantom, converted
# The phantom (not the parity benchmark's generated 256x320 data): the reference figures were
# measured on it at 1024 px, and its decode cost is the real one (reused by a rerun).
data=$work/data
tag="$n_train/$n_test/$scale/$png"
if [ -f "$work/data.ok" ] && [ "$(cat "$work/data.ok")" = "$tag" ]; then
  echo "=== [data] reusing $data ($tag)" | tee -a "$log"
  printf 'data\treused\t0\t0\t0\n' >>"$steps"
  data_ok=1
else
  rm -rf "$work/phantom" "$data" "$work/data.ok"
  data_ok=0
  if [ $setup_rc -ne 0 ]; then
    skip phantom 'setup failed'
  elif step phantom 120 265 "${py[@]}" tools/misc/make_phantom.py --out "$work/phantom" \
      --num-train $n_train --num-test $n_test --seed 0 --size-scale $scale --workers "$jobs" \
      --no-progress \
    && step convert 120 225 "${py[@]}" tools/dataset_converters/vindr_spinexr.py \
      --data-root "$work/phantom" --out-dir "$data" --img-size $png --workers "$jobs" \
      --no-progress; then
    echo "$tag" >"$work/data.ok"
    data_ok=1
  fi
fi
if [ $data_ok = 1 ]; then
  parity_data=(--data-root "$data")
else  # fall back to the benchmarks' own generated data (small images), said in the log
  echo "=== no phantom: both benchmarks generate their own (smaller) images" | tee -a "$log"
  parity_data=(--train-images $n_train --test-images $n_test)
fi

# ------------------------------------------------------------------ 2b. EMA update, old vs new
# (seconds: mmdet's ExpMomentumEMA read its step count back once per tensor; figures in the log)
if [ $setup_rc -ne 0 ]; then
  skip ema 'setup failed'
else
  step ema 40 $((infer_max + reserve_parity)) "${py[@]}" benchmarks/bench_ema.py --sizes n l \
    --device "$ema_device" --repeats 10
fi

# ------------------------------------------------------------------ 3. inference throughput
# (before training: it is short and predictable, and training then gets all the time left)
# Inputs: the phantom's PNGs (train + test), hard-linked again under other names until there are
# at least $infer_min files (the same pixels decoded again: no generation time spent).
if [ $setup_rc -ne 0 ]; then
  skip infer 'setup failed'
else
  rm -rf "$work/infer" "$work/infer_inputs"
  n=0 copy=0
  if [ $data_ok = 1 ]; then
    mkdir -p "$work/infer_inputs"
    while [ "$n" -lt $infer_min ] && [ $copy -lt 100 ]; do
      for split in train test; do
        cp -al "$data/$split" "$work/infer_inputs/${split}_$copy" || break 2
      done
      n=$(find "$work/infer_inputs" -name '*.png' | wc -l)
      copy=$((copy + 1))
    done
    echo "=== [infer] $n input files ($copy hard-linked copies of the phantom's PNGs)" \
      | tee -a "$log"
  fi
  if [ "$n" -gt 0 ]; then
    infer_data=(--inputs "$work/infer_inputs")
  else  # no phantom: bench_infer generates its own PNGs (slower, and said in the log)
    echo "=== [infer] no phantom PNGs: generating $infer_min" | tee -a "$log"
    infer_data=(--images $infer_min --src-size $png)
  fi
  step infer "$infer_max" "$reserve_parity" "${py[@]}" benchmarks/bench_infer.py \
    "${infer_data[@]}" "${infer_args[@]}" --repeats 1 --work-dir "$work/infer" \
    && cp "$work/infer/bench_infer.json" "$out/infer.json"
fi

# ------------------------------------------------------------------ 4. training throughput
# (gets all the time left)
if [ $setup_rc -ne 0 ]; then
  skip parity 'setup failed'
else
  rm -rf "$work/parity"
  step parity 600 5 "${py[@]}" benchmarks/bench_yolo_parity.py "${parity_data[@]}" \
    "${parity_args[@]}" --epochs "$epochs" --work-dir "$work/parity" \
    && cp "$work/parity/parity.json" "$out/parity.json"
fi

# ------------------------------------------------------------------ 5. summary (stdlib only)
python3 benchmarks/gpu_check_summary.py "$out" 2>&1 | tee -a "$log"
echo "gpu_check ($mode) done in $(($(date +%s) - start))s; results in $out" | tee -a "$log"
