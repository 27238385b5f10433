"""``import spinexr`` registers components and changes no global state."""
import json
import subprocess
import sys

_PROBE = r'''
import json, logging, os, sys
import cv2, torch
def state():
    root = logging.getLogger()
    return dict(env=dict(os.environ), torch_threads=torch.get_num_threads(),
                torch_interop=torch.get_num_interop_threads(), cv2_threads=cv2.getNumThreads(),
                root_level=root.level, root_handlers=len(root.handlers),
                # libraries' own loggers with only a NullHandler are not logging configuration
                loggers=sorted(n for n, lg in logging.root.manager.loggerDict.items()
                               if isinstance(lg, logging.Logger) and any(
                                   not isinstance(h, logging.NullHandler) for h in lg.handlers)))
before = state()
import spinexr
after = state()
from mmdet.registry import DATASETS, MODELS
from mmengine.registry import RUNNERS
print(json.dumps(dict(before=before, after=after,
                      ultralytics_imported='ultralytics' in sys.modules,
                      runner=RUNNERS.get('SpinexrRunner') is not None)))
'''

# Where transformers is installed (not in the verified stack), mmengine's optimizer registry and
# mmdet's text transforms and language models import it, and it gives these loggers of its own a
# handler: the host libraries' doing, not spinexr's (scripts/compat_check.sh runs this test there).
TRANSFORMERS_LOGGERS = {'transformers', 'huggingface_hub', 'ContinuousBatchingLogger'}


def test_import_has_no_side_effects():
    proc = subprocess.run([sys.executable, '-c', _PROBE], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    before, after = res['before'], res['after']
    added = set(after['env']) - set(before['env'])
    changed = {k for k in before['env'] if after['env'].get(k) != before['env'][k]}
    assert not added and not changed, (added, changed)
    for key in ('torch_threads', 'torch_interop', 'cv2_threads', 'root_level', 'root_handlers'):
        assert after[key] == before[key], key
    new_loggers = {n for n in set(after['loggers']) - set(before['loggers'])
                   if n.split('.')[0] not in TRANSFORMERS_LOGGERS}
    assert not new_loggers, new_loggers
    assert not res['ultralytics_imported'], 'ultralytics must be imported lazily'
    assert res['runner']
