#!/usr/bin/env bash
# Check that a regular install (`pip install .`, NOT editable) is enough to run experiments from
# any folder: the shipped configs travel inside the package and are found through it.
#
# Usage: bash scripts/check_wheel.sh [SOURCE_DIR]      (default: this checkout)
#
# How (no network; the dependencies are the ones already in the project's .venv):
#   1. the source tree (the files git tracks or would track; everything when SOURCE_DIR is no git
#      work tree) is copied to a temp folder, so the build leaves nothing in the checkout;
#   2. a wheel is built from that copy and `pip install`ed (not editable) into a fresh venv whose
#      only link to the project venv is a .pth line that appends its site-packages (the
#      dependencies; the project venv's own .pth files, its editable spinexr among them, are not
#      read), so no download is needed;
#   3. from another temp folder (not the checkout), the fresh venv's python checks that
#      - `spinexr` is imported from the fresh venv's site-packages (SITE), not from the checkout,
#      - SITE/spinexr/.mim/configs is a real folder (not a link) holding every config of the
#        source tree's configs/ (a config missing from the wheel fails here),
#      - every shipped config loads by its name (config_path('configs/x/y.py')) and, in a fresh
#        process, builds its model (skipped with SPINEXR_WHEEL_QUICK=1),
#      - the model table runs end to end on a generated 4-image dataset with a shipped config
#        name, untrained (python -m spinexr.cli.model_table; skipped with SPINEXR_WHEEL_QUICK=1),
#      - the main job's smoke run: python -m spinexr.cli.run_comparison $SPINEXR_WHEEL_SMOKE_ARGS
#        (default: RetinaNet only, 2 iterations on an 8 + 4 image phantom at 128 px, no
#        classifiers): phantom -> conversion -> training and test in child processes
#        (python -m spinexr.cli.train / test, which import the installed copy) -> the table.
# The last line says PASSED or FAILED.
#
# Environment:
#   SPINEXR_PYTHON            interpreter with the dependencies (default: <checkout>/.venv/bin/python)
#   SPINEXR_WHEEL_QUICK       1: stop after the file and config-loading checks
#   SPINEXR_WHEEL_SMOKE_ARGS  arguments of the main job's smoke run (default: see _SMOKE below)
#   SPINEXR_WHEEL_KEEP        1: keep the temp folder and print its path
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$(cd "${1:-$root}" && pwd)
py=${SPINEXR_PYTHON:-$root/.venv/bin/python}
quick=${SPINEXR_WHEEL_QUICK:-0}
_SMOKE='--models retinanet_r50_fpn --iters 2 --num-train 8 --num-test 4 --img-size 128 --no-classifiers'
smoke_args=${SPINEXR_WHEEL_SMOKE_ARGS:-$_SMOKE}
start=$(date +%s)
log() { printf '[wheel] %s\n' "$*"; }
step() { printf '[wheel] %s (at %s s)\n' "$*" "$(( $(date +%s) - start ))"; }
fail() { printf '[wheel] FAILED: %s (%s s)\n' "$*" "$(( $(date +%s) - start ))"; exit 1; }

[ -x "$py" ] || fail "no $py: run 'make install' first (or set SPINEXR_PYTHON)"
work=$(mktemp -d "${TMPDIR:-/tmp}/spinexr-wheel.XXXXXX")
if [ "${SPINEXR_WHEEL_KEEP:-0}" = 1 ]; then
  log "temp folder kept at $work"
else
  trap 'rm -rf "$work"' EXIT
fi

step "1/5 copy the source tree of $src"
mkdir -p "$work/src"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard \
    | xargs -0 sh -c 'for f; do if [ -e "$f" ] || [ -L "$f" ]; then printf "%s\0" "$f"; fi; done' sh \
    | tar --null -T - -cf -) | tar -xf - -C "$work/src" || fail "copying the source tree"
else
  tar -C "$src" --exclude=./.venv --exclude=./work_dirs --exclude=./data -cf - . \
    | tar -xf - -C "$work/src" || fail "copying the source tree"
fi

step "2/5 build the wheel; pip install it into a fresh venv (no network)"
"$py" -m pip wheel -q --disable-pip-version-check --no-deps --no-build-isolation --no-index \
  -w "$work/dist" "$work/src" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; fail "building the wheel"; }
wheel=$(ls "$work"/dist/spinexr-*.whl)
base=$("$py" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
"$base" -m venv "$work/venv" >>"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; fail "creating a venv with $base"; }
vpy="$work/venv/bin/python"
site=$("$vpy" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$vpy" -m pip install -q --disable-pip-version-check --no-deps --no-index "$wheel" \
  >>"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; fail "pip install $wheel"; }
# The dependencies (torch, mmcv with its compiled ops, ...) are not downloaded again: a .pth line
# appends the project venv's site-packages to the fresh venv's path, after its own site-packages.
# Lines of a .pth file are only added to the path; the .pth files inside that folder (the
# project venv's editable spinexr among them) are not read, so only the wheel's spinexr exists.
deps=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$deps" >"$site/spinexr_check_dependencies.pth"
log "   $(basename "$wheel"): $(du -k "$wheel" | cut -f1) KiB, installed into $site"
py=$vpy

mkdir -p "$work/run"
cd "$work/run"
unset PYTHONPATH
export YOLO_OFFLINE=1 MPLBACKEND=Agg PYTHONWARNINGS=ignore::UserWarning
export SPINEXR_WHEEL_SITE="$site" SPINEXR_WHEEL_SRC="$work/src" SPINEXR_CHECKOUT="$src"

step "3/5 the installed copy is the one imported, and it holds every config of configs/"
"$py" - <<'PY' || fail "the installed package (see above)"
import os
from pathlib import Path

import spinexr
from spinexr.utils.paths import config_dir, config_path

site = Path(os.environ['SPINEXR_WHEEL_SITE']).resolve()
pkg = Path(spinexr.__file__).resolve().parent
assert pkg == site / 'spinexr', f'spinexr imported from {pkg}, not from the installed {site}'
mim = site / 'spinexr' / '.mim' / 'configs'
assert mim.is_dir() and not mim.is_symlink(), f'{mim}: missing or a link'
assert config_dir() == mim, config_dir()
src = Path(os.environ['SPINEXR_WHEEL_SRC']) / 'configs'
want = sorted(str(p.relative_to(src)) for p in src.rglob('*.py'))
have = sorted(str(p.relative_to(mim)) for p in mim.rglob('*.py'))
missing = sorted(set(want) - set(have))
assert want and not missing, f'{len(missing)} of {len(want)} configs missing from the wheel: {missing[:5]}'
assert not any(p.is_symlink() for p in mim.rglob('*')), 'links inside the installed configs'
for name in want:
    assert Path(config_path(f'configs/{name}')).resolve() == mim / name, name
print(f'[wheel]    spinexr from {pkg}; {len(have)} configs in {mim}')
PY

step "4/5 every shipped config loads by name; models build in a fresh process"
"$py" - "$quick" <<'PY' || fail "loading or building the shipped configs"
import sys
from mmengine.config import Config
from mmengine.registry import DefaultScope, MODELS

from spinexr.utils.paths import config_dir, config_path

build = sys.argv[1] != '1'
names = sorted(str(p.relative_to(config_dir())) for p in config_dir().rglob('*.py')
               if '_base_' not in p.parts)
for name in names:
    cfg = Config.fromfile(config_path(f'configs/{name}'))  # custom_imports: spinexr first
    if not build or 'model' not in cfg:  # configs/ensembles: fuses predictions, no model
        continue
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(cfg.model)
    n = sum(p.numel() for p in model.parameters()) / 1e6
    print(f'[wheel]    {name}: {type(model).__name__}, {n:.1f} M parameters', flush=True)
print(f'[wheel]    {len(names)} configs loaded' + ('' if build else ' (models not built: quick)'))
PY

if [ "$quick" = 1 ]; then
  step "5/5 skipped (SPINEXR_WHEEL_QUICK=1)"
else
  step "5/5 the model table on a generated dataset, from $work/run"
  "$py" -c "from spinexr.testing import make_tiny_coco; make_tiny_coco('tiny', split='test', num_images=4, seed=1)" \
    || fail "generating the tiny dataset"
  "$py" -m spinexr.cli.model_table --models \
    retina=configs/retinanet/retinanet_r50_fpn_12e_vindr-640.py: --data-root tiny \
    --out-dir table --device cpu --n-bootstrap 20 --no-flops >"$work/table.log" 2>&1 \
    || { tail -20 "$work/table.log"; fail "python -m spinexr.cli.model_table"; }
  [ -s table/comparison.md ] && [ -s table/comparison.csv ] || fail "no table written"
  log "   table written: $(grep -c '^| retina' table/comparison.md) row (untrained RetinaNet)"
  log "   the main job's smoke: python -m spinexr.cli.run_comparison $smoke_args"
  # shellcheck disable=SC2086  # the arguments are meant to split on spaces
  "$py" -m spinexr.cli.run_comparison $smoke_args --work-dir comparison \
    >"$work/smoke.log" 2>&1 || { tail -30 "$work/smoke.log"; fail "the main job's smoke run"; }
  [ -s comparison/results/comparison.md ] || fail "the main job wrote no table"
  log "   main job table written: $(grep -c '^| retinanet' comparison/results/comparison.md) row (RetinaNet, 2 iterations)"
fi
log "PASSED ($(( $(date +%s) - start )) s)"
