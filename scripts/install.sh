#!/usr/bin/env bash
# Install spinexr and its pinned OpenMMLab + Ultralytics stack into .venv/ at the repository root.
#
# Idempotent: a second run checks a stamp (hash of the requirement files and this script) plus the
# imports that matter and returns in seconds. The mmcv 2.1.0 wheel, built from its sdist with the
# compiled ops (C++20, no build isolation), is cached under $SPINEXR_CACHE (default
# ~/.cache/spinexr), keyed by Python, torch and CUDA, so it is built once per machine.
#
# Environment:
#   PYTHON          interpreter used to create the venv (default: python3)
#   SPINEXR_CACHE   wheel cache folder (default: ~/.cache/spinexr)
#   MAX_JOBS        parallel compile jobs for mmcv (default: number of cores)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv="$root/.venv"
py="$venv/bin/python"
cache="${SPINEXR_CACHE:-$HOME/.cache/spinexr}"
mmcv_version=2.1.0
log() { printf '[install] %s\n' "$*"; }
die() { printf '[install] ERROR: %s\n' "$*" >&2; exit 1; }

# need_space DIR MIB WHAT: stop before a step that would fill the disk half-way (pip then leaves a
# broken venv behind and says only "No space left on device").
need_space() {
  local dir=$1 need=$2 have
  mkdir -p "$dir"
  have=$(df -Pm "$dir" | awk 'NR == 2 {print $4}')
  if [ "$have" -lt "$need" ]; then
    die "$3 needs about $need MiB free in $dir, but only $have MiB are free there. Free some space \
there (TMPDIR moves the mmcv build to another disk) and run this again; what is installed is kept."
  fi
  log "disk: $have MiB free in $dir ($need MiB needed for $3)"
}

stamp_of() {
  cat requirements/runtime.txt requirements/build.txt requirements/constraints.txt requirements/tests.txt scripts/install.sh setup.py \
    | sha256sum | cut -d' ' -f1
}

check_stack() {
  "$py" - <<'PY'
import importlib, sys
import mmcv, mmcv.ops  # noqa: F401  (fails without compiled ops)
from mmcv.ops import nms  # noqa: F401
import mmdet.models, mmpretrain.models, ultralytics, pydicom, pycocotools, spinexr  # noqa: F401
import pkg_resources  # noqa: F401  (mmengine needs it for 'mmdet::' config inheritance)
assert mmcv.__version__ == "2.1.0", mmcv.__version__
PY
}

start=$(date +%s)
want=$(stamp_of)
if [ -x "$py" ] && [ -f "$venv/.spinexr-stamp" ] && [ "$(cat "$venv/.spinexr-stamp")" = "$want" ]; then
  if check_stack 2>/dev/null; then
    log "environment in $venv is up to date ($(( $(date +%s) - start )) s)"
    exit 0
  fi
  log "stamp matches but imports fail; reinstalling"
fi

if [ ! -x "$py" ]; then
  log "creating $venv"
  "${PYTHON:-python3}" -m venv "$venv" || die "could not create a virtual environment with ${PYTHON:-python3}"
fi
pip=("$py" -m pip --disable-pip-version-check)
pipc=("${pip[@]}" install -c requirements/constraints.txt)

log "build tools"
"${pipc[@]}" -q -r requirements/build.txt || die "pip could not install requirements/build.txt"

if ! "$py" -c "import torch, torchvision, sys; sys.exit(torch.__version__.split('+')[0] != '2.14.1')" 2>/dev/null; then
  # Measured: the whole venv is 6.4 GB, 5.5 GB of it torch's CUDA build with its nvidia-* wheels
  # (PyPI's only x86_64 build; torchvision's ops need its CUDA libraries even on a CPU machine).
  need_space "$venv" 7000 "torch 2.14.1 + torchvision 0.29.1 and the rest of the stack"
fi
log "torch / torchvision (large on first install)"
"${pipc[@]}" -q "torch==2.14.1" "torchvision==0.29.1" || die "pip could not install torch==2.14.1 torchvision==0.29.1"

# --- mmcv with compiled ops -------------------------------------------------------------------
cuda=$("$py" -c "import torch; print('cu' + torch.version.cuda.replace('.', '') if torch.cuda.is_available() and torch.version.cuda else 'cpu')")
pyver=$("$py" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
torchver=$("$py" -c "import torch; print(torch.__version__.split('+')[0])")
wheel_dir="$cache/mmcv-$mmcv_version-$pyver-torch$torchver-$cuda"
mkdir -p "$wheel_dir"
wheel=$(ls "$wheel_dir"/mmcv-"$mmcv_version"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
  need_space "${TMPDIR:-/tmp}" 600 "building mmcv (measured: 301 MB peak)"
  build=$(mktemp -d)
  log "building mmcv $mmcv_version with compiled ops ($cuda); about 8 minutes on 2 cores; log: $build/build.log"
  "${pip[@]}" download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$mmcv_version" -d "$build" \
    || die "could not download the mmcv==$mmcv_version sdist"
  tar -xzf "$build"/mmcv-"$mmcv_version".tar.gz -C "$build"
  src="$build/mmcv-$mmcv_version"
  # torch >= 2.12 headers need C++20; mmcv 2.1.0 asks for C++14/17.
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$src/setup.py"
  grep -q 'c++20' "$src/setup.py" || die "mmcv setup.py no longer carries a -std flag to patch; check the sdist"
  export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
  if [ "$cuda" != cpu ]; then
    export FORCE_CUDA=1
    log "CUDA detected: building CUDA ops as well"
  fi
  if ! "${pip[@]}" wheel --no-deps --no-build-isolation -w "$build/dist" "$src" >"$build/build.log" 2>&1; then
    tail -n 40 "$build/build.log" >&2
    die "building mmcv $mmcv_version failed (full log: $build/build.log)"
  fi
  if grep -q "Skip building ext ops" "$build/build.log"; then
    die "mmcv was built WITHOUT its compiled ops (see $build/build.log)"
  fi
  built=$(ls "$build"/dist/mmcv-*.whl)
  "$py" - "$built" <<'PY' || die "the mmcv wheel has no compiled _ext module"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
assert any(n.startswith("mmcv/_ext") and n.endswith(".so") for n in names)
PY
  cp "$built" "$wheel_dir/"
  wheel="$wheel_dir/$(basename "$built")"
  rm -rf "$build"
  log "mmcv wheel cached at $wheel"
fi
log "installing $(basename "$wheel")"
"${pip[@]}" install -q --no-deps --force-reinstall "$wheel" || die "could not install $wheel"

log "the rest of the stack"
"${pipc[@]}" -q -r requirements/runtime.txt -r requirements/tests.txt \
  || die "pip could not install requirements/runtime.txt"
# mmcv's own dependencies (installed --no-deps above).
"${pipc[@]}" -q addict packaging Pillow pyyaml yapf opencv-python \
  || die "pip could not install mmcv's dependencies"
log "spinexr (editable)"
"${pip[@]}" install -q --no-deps --no-build-isolation -e . || die "pip could not install spinexr in editable mode"

check_stack || die "the stack installed but an import fails (see above)"
echo "$want" >"$venv/.spinexr-stamp"
log "done in $(( $(date +%s) - start )) s; activate with: source .venv/bin/activate"
