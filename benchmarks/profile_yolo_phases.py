"""Counting rules and report of ``profile_yolo_step.py``: operators, would-be syncs and phases.

One profiled iteration is a tree of ``torch.profiler`` events recorded with ``with_stack=True``:
Python calls (``file.py(line): name``, ``<built-in ...>``) and operators (``aten::...``,
``autograd::...``). Only the events under the outermost Python call named ``root_suffix`` count.

* **Operators**: ``aten_ops`` counts every ``aten::`` event at any depth (nested ones included);
  ``top_level_ops`` counts operator events with no operator above them (what Python dispatches,
  plus the autograd engine's ``evaluate_function`` nodes in backward).
* **Would-be syncs**: on CPU nothing waits, so count the operators that block the host on a CUDA
  device (:data:`SYNC_OPS`: a scalar read such as ``.item()``/``float()``/``int()``/``bool()`` of a
  tensor, data-dependent output sizes), outermost only (``item`` -> ``_local_scalar_dense`` is one).
  ``repeat_interleave`` is counted even when given ``output_size`` (which would not sync).
  Not visible here: ``.tolist()``/``.numpy()`` and explicit ``.cpu()`` of a CPU tensor (no
  operator is dispatched), and copies that only become device-to-host on a GPU.
* **Phases**: each event takes the phase of the first rule of :data:`PHASE_RULES` its own name
  matches, else its parent's (innermost match wins); an event's self time (its duration minus its
  children's) goes to its phase, so the phase times add up to the profiled iteration exactly.
  With Python tracing on, the profiled times are inflated (Python-heavy phases most); ``est_ms``
  scales each phase's share to the wall time measured without the profiler.
"""
import re
from statistics import median
from typing import Dict, List, Optional

SYNC_OPS = frozenset({
    'aten::item', 'aten::_local_scalar_dense', 'aten::is_nonzero', 'aten::nonzero',
    'aten::nonzero_numpy', 'aten::argwhere', 'aten::masked_select', 'aten::unique',
    'aten::_unique', 'aten::_unique2', 'aten::unique_dim', 'aten::unique_consecutive',
    'aten::unique_dim_consecutive', 'aten::repeat_interleave', 'aten::equal', 'aten::bincount'})

#: (phase, regex on the event's own name); the first match wins, checked innermost first.
PHASE_RULES = (
    ('ema', r'yolo_ema\.py|ema_hook\.py|/ema\.py\(|averaged_model\.py|'
            r'torch_utils\.py\(\d+\): update$'),
    ('loss', r'pack_yolo_targets|yolo11_loss\.py|ultralytics/utils/(loss|tal)\.py|parse_losses|'
             r'\): _ul_loss$|yolo11\.py\(\d+\): loss$|tasks\.py\(\d+\): loss$'),
    ('backward', r'\): backward$|run_backward|grad_scaler\.py\(\d+\): scale$|\): _ul_backward$'),
    ('optimizer', r'torch/optim/|clip_grad|optimizer_wrapper\.py|optimizer_step|grad_scaler\.py|'
                  r'\): _ul_optimizer$'),
    ('forward', r'ultralytics/nn/'),
    ('preprocess', r'data_preprocessor|\): _ul_preprocess$|preprocess_batch'),
    ('hooks+log', r'mmengine/hooks/|mmdet/engine/hooks/|spinexr/engine/hooks/|message_hub|'
                  r'call_hook|\): _ul_log$|\): _ul_schedule$|run_callbacks|mmengine/logging/'),
)
PHASES = tuple(p for p, _ in PHASE_RULES) + ('other', )
_RULES = [(p, re.compile(r)) for p, r in PHASE_RULES]
_PY = re.compile(r'\.py\(\d+\): |^<built-in|^nn\.Module: |^<')


def is_python(name: str) -> bool:
    """Whether a profiler event is a Python call (from ``with_stack``), not an operator."""
    return bool(_PY.search(name))


def _own_phase(name: str) -> Optional[str]:
    for phase, rx in _RULES:
        if rx.search(name):
            return phase
    return None


def analyse_events(events, root_suffix: str) -> dict:
    """Figures of one profiled iteration (see the module docstring).

    Args:
        events: ``prof.events()`` of a ``torch.profiler.profile(with_stack=True)`` run.
        root_suffix (str): Name of the Python function that is the iteration (outermost call).

    Returns:
        dict: ``profiled_ms``, ``aten_ops``, ``top_level_ops``, ``syncs``, ``phases``
        (phase -> ms/ops/syncs), ``ops`` (aten name -> [count, self ms]) and ``sync_sites``.
    """
    evs = sorted(events, key=lambda e: (e.time_range.start, -e.time_range.end))
    root = next((e for e in evs if e.name.endswith('): ' + root_suffix)), None)
    if root is None:
        raise RuntimeError(f'no profiler event of {root_suffix!r}: was with_stack on?')
    info: Dict[int, tuple] = {id(root): ('other', False, False, root.name)}
    res = dict(profiled_ms=root.cpu_time_total / 1000, aten_ops=0, top_level_ops=0, syncs=0,
               phases={p: dict(ms=0.0, ops=0, syncs=0) for p in PHASES}, ops={}, sync_sites={})
    res['phases']['other']['ms'] += root.self_cpu_time_total / 1000
    for e in evs:
        parent = e.cpu_parent
        if e is root or parent is None or id(parent) not in info:
            continue
        p_phase, p_under_op, p_under_sync, p_frame = info[id(parent)]
        py = is_python(e.name)
        phase = _own_phase(e.name) or p_phase
        frame = e.name if py and not e.name.startswith(('torch/', '<')) else p_frame
        is_sync = not py and e.name in SYNC_OPS and not p_under_sync
        info[id(e)] = (phase, p_under_op or not py, p_under_sync or is_sync, frame)
        ph = res['phases'][phase]
        ph['ms'] += e.self_cpu_time_total / 1000
        if py:
            continue
        if not p_under_op:
            res['top_level_ops'] += 1
        if e.name.startswith('aten::'):
            res['aten_ops'] += 1
            ph['ops'] += 1
            c = res['ops'].setdefault(e.name, [0, 0.0])
            c[0] += 1
            c[1] += e.self_cpu_time_total / 1000
        if is_sync:
            res['syncs'] += 1
            ph['syncs'] += 1
            site = f'{e.name} @ {frame}'
            res['sync_sites'][site] = res['sync_sites'].get(site, 0) + 1
    return res


def summarise(iters: List[dict]) -> dict:
    """Medians over profiled iterations; per-op and per-site figures averaged per iteration."""
    n = len(iters)
    out = {k: median(it[k] for it in iters)
           for k in ('profiled_ms', 'aten_ops', 'top_level_ops', 'syncs')}
    out['phases'] = {p: {k: median(it['phases'][p][k] for it in iters)
                         for k in ('ms', 'ops', 'syncs')} for p in PHASES}
    ops: Dict[str, List[float]] = {}
    sites: Dict[str, float] = {}
    for it in iters:
        for name, (c, ms) in it['ops'].items():
            acc = ops.setdefault(name, [0.0, 0.0])
            acc[0] += c / n
            acc[1] += ms / n
        for site, c in it['sync_sites'].items():
            sites[site] = sites.get(site, 0) + c / n
    out['top_ops'] = [dict(op=k, calls=v[0], self_ms=v[1])
                      for k, v in sorted(ops.items(), key=lambda kv: -kv[1][1])[:12]]
    out['sync_sites'] = dict(sorted(sites.items(), key=lambda kv: -kv[1])[:15])
    return out


def settings(args) -> dict:
    """What the figures mean, for the JSON file."""
    return dict(
        device='cpu', torch_threads=args.threads, accumulate=args.accumulate,
        multi_scale=args.multi_scale, sync_ops=sorted(SYNC_OPS),
        phase_rules=dict(PHASE_RULES),
        counting='aten_ops: all aten:: events at any depth; top_level_ops: operator events with '
        'no operator above them; syncs: outermost SYNC_OPS events; phase ms: profiled self '
        'times (Python tracing on), est_ms: share x unprofiled wall median')


def format_report(r: dict) -> str:
    """The stdout table: step summary, per-phase table, top ops, sync sites, pipeline."""
    a, u = r['step']['adapter'], r['step']['ultralytics']
    s = r['args']
    code = r.get('code', {})
    lines = [f"YOLO11{s['size']}, {s['imgsz']} px, batch {s['batch']} x {s['accumulate']} "
             f"accumulation, multi-scale {s['multi_scale']}, CPU, {s['threads']} torch thread(s); "
             f"medians of {s['iters']} iterations after {s['warmup']}; code {code.get('commit')}"
             f" (+{len(code.get('changed', []))} changed files)",
             f"{'per iteration':<28}{'adapter':>12}{'ultralytics':>12}{'ratio':>8}"]
    for key, label in (('wall_ms_median', 'host wall ms (no profiler)'),
                       ('profiled_ms', 'profiled ms (stack tracing)'),
                       ('aten_ops', 'aten:: ops (all depths)'),
                       ('top_level_ops', 'top-level ops'), ('syncs', 'would-be syncs')):
        lines.append(f'{label:<28}{a[key]:>12.1f}{u[key]:>12.1f}'
                     f'{a[key] / max(u[key], 1e-9):>8.2f}')
    lines.append(f"\n{'phase':<12}{'adapter est_ms':>15}{'ops':>7}{'syncs':>6}"
                 f"{'UL est_ms':>11}{'ops':>7}{'syncs':>6}")
    for p in PHASES:
        row = f'{p:<12}'
        for side, w in ((a, 15), (u, 11)):
            ph = side['phases'][p]
            row += f"{ph['est_ms']:>{w}.1f}{ph['ops']:>7.0f}{ph['syncs']:>6.0f}"
        lines.append(row)
    for name, side in (('adapter', a), ('ultralytics', u)):
        lines.append(f'\ntop ops by self CPU time, {name} (per iteration: calls, ms)')
        lines += [f"  {o['op']:<40}{o['calls']:>8.0f}{o['self_ms']:>10.1f}"
                  for o in side['top_ops']]
        lines.append(f'would-be syncs, {name} (per iteration)')
        lines += [f'  {c:>6.1f}  {site}' for site, c in side['sync_sites'].items()]
    for stage, pr in r['pipeline'].items():
        pa, pu = pr['adapter'], pr['ultralytics']
        lines.append(f"\npipeline {stage}: adapter {pa['samples_per_s']:.1f} samples/s, "
                     f"Ultralytics {pu['samples_per_s']:.1f} samples/s, ratio {pr['ratio']:.2f}x"
                     ' (one worker: main process)')
        for name, side in (('adapter', pa), ('ultralytics', pu)):
            lines.append(f'  {name} ms/sample: ' + ', '.join(
                f'{k[3:]} {v:.2f}' for k, v in side['transforms_ms'].items()))
    return '\n'.join(lines)
