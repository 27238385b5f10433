#!/usr/bin/env bash
# Check that spinexr works beside the newer packages users have, not only with the verified pins of
# requirements/constraints.txt: transformers 5, OpenCV 5 and the newest numpy for this Python.
#
# How: a throwaway virtual environment (under $TMPDIR, deleted at the end) gets only those packages
# from PyPI (about 20 s, 150 MB). A .pth file then appends the project's .venv site-packages after
# its own (site.addsitedir, so the editable spinexr install counts too), so the newer packages
# shadow the pinned ones and torch, mmcv & co. are not installed again. In that environment it
#   1. imports spinexr and checks that the newer packages are the ones imported,
#   2. loads every shipped config (custom_imports=['spinexr'], as tools/train.py does) in a fresh
#      process and builds its model through mmdet's or mmpretrain's registry,
#   3. runs the test files that touch those packages (import, phantom, classifier configs,
#      conversion, copy-paste, this check's own tests).
# The last line says PASSED or FAILED. Needs .venv (make install) and PyPI; nothing else online.
#
# Environment:
#   SPINEXR_COMPAT_SPECS  pip requirement specifiers installed into the throwaway venv
#                         (default: "transformers>=5,<6 opencv-python>=5,<6 numpy")
#   SPINEXR_COMPAT_KEEP   1: keep the throwaway venv and print its path (default: delete it)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
main_py="$root/.venv/bin/python"
specs=${SPINEXR_COMPAT_SPECS:-"transformers>=5,<6 opencv-python>=5,<6 numpy"}
start=$(date +%s)
log() { printf '[compat] %s\n' "$*"; }
fail() { printf '[compat] FAILED: %s (%s s)\n' "$*" "$(( $(date +%s) - start ))"; exit 1; }

[ -x "$main_py" ] || fail "no $main_py: run 'make install' first"
venv=$(mktemp -d "${TMPDIR:-/tmp}/spinexr-compat.XXXXXX")
if [ "${SPINEXR_COMPAT_KEEP:-0}" = 1 ]; then
  log "throwaway venv kept at $venv"
else
  trap 'rm -rf "$venv"' EXIT
fi

"$main_py" -m venv "$venv" || fail "could not create a venv in $venv"
py="$venv/bin/python"
log "installing into the throwaway venv: $specs"
# shellcheck disable=SC2086  # the specifiers are meant to split on spaces
"$py" -m pip install -q --disable-pip-version-check $specs || fail "pip could not install: $specs"
# Only now link the project's site-packages (appended, so what was just installed comes first);
# before, pip would have seen the pinned packages as installed and might have uninstalled them.
main_site=$("$main_py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
own_site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf 'import site; site.addsitedir(%s)\n' "'$main_site'" >"$own_site/spinexr_pinned_stack.pth"

export PYTHONPATH="$root" YOLO_OFFLINE=1 MPLBACKEND=Agg
log "1/3 versions and import"
SPECS="$specs" "$py" - <<'PY' || fail "import spinexr beside the newer packages"
import spinexr  # noqa: F401  (first, as a config's custom_imports does)
import mmpretrain.models  # noqa: F401
import importlib.metadata as md
import os, re, sys  # noqa: E401
import cv2, numpy, transformers  # noqa: E401
from spinexr._compat import multimodal_breaks
# what was installed into the throwaway venv shadows the pinned packages
asked = {re.split('[<>=!~ ;\\[]', spec)[0].lower() for spec in os.environ['SPECS'].split()}
for dist, mod in (('opencv-python', cv2), ('numpy', numpy), ('transformers', transformers)):
    if dist in asked:
        assert mod.__file__.startswith(sys.prefix), (mod.__name__, mod.__file__, sys.prefix)
print('[compat] transformers', transformers.__version__, '| opencv', cv2.__version__,
      '| numpy', numpy.__version__, '| torch', md.version('torch'), '| mmpretrain',
      md.version('mmpretrain'), '| multimodal models skipped:',
      multimodal_breaks(transformers.__version__))
PY

log "2/3 every shipped config loads (custom_imports=['spinexr']) and builds its model (fresh process)"
"$py" - <<'PY' || fail "building the shipped configs"
import glob
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
paths = sorted(p for p in glob.glob('configs/**/*.py', recursive=True) if '/_base_/' not in p)
for path in paths:
    cfg = Config.fromfile(path)  # imports spinexr first (custom_imports), as tools/train.py does
    if 'model' not in cfg:  # e.g. configs/ensembles: fuses saved predictions, builds no model
        print(f'[compat]   {path}: loaded (no model: a prediction-only config)', flush=True)
        continue
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)  # mmdet's / mmpretrain's registry, by the config's scope
    print(f'[compat]   {path}: {type(model).__name__} ({cfg.default_scope}), '
          f'{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters', flush=True)
PY

log "3/3 test files"
"$py" -m pytest -q -p no:cacheprovider tests/test_import.py tests/test_compat.py \
  tests/datasets/phantom tests/models/classifiers/test_member_configs.py \
  tests/datasets/transforms/test_copy_paste.py tests/datasets/converters \
  || fail "tests beside the newer packages"

versions=$("$py" -c 'import cv2, numpy, transformers; print(f"transformers {transformers.__version__}, opencv {cv2.__version__}, numpy {numpy.__version__}")')
printf '[compat] PASSED: spinexr works with %s (%s s)\n' "$versions" "$(( $(date +%s) - start ))"
