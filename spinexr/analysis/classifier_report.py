"""Rows of the comparison table and ROC curves for the abnormality classifiers.

Input is a prediction CSV written by ``BinaryClsMetric(prediction_file=...)`` on the test split,
e.g. by ``tools/test.py configs/classifiers/ensemble_vindr-384.py``: columns ``label``, ``prob``
(the evaluated model) and, for the ensemble, ``prob_<member>`` per member.

Example (for ``tools/analysis_tools/model_table.py`` or a notebook)::

    from spinexr.analysis.classifier_report import classifier_rows, plot_roc_curves
    rows = classifier_rows('work_dirs/ensemble_vindr-384/test_predictions.csv',
                           thresholds='work_dirs/cv/ensemble_search.json')
    # [{'model': 'ensemble', 'auroc': 90.1, 'auroc_ci': (88.7, 91.4), 'sensitivity': ...}, ...]
    plot_roc_curves('work_dirs/ensemble_vindr-384/test_predictions.csv', 'roc.png')

Thresholds should come from validation (the json of ``tools/search_ensemble.py``: ``threshold``
for the ensemble, ``member_thresholds`` for the members); choosing them on the predictions being
reported is leakage, so this module never does.

:func:`study_rows` gives the same statistics per STUDY: the image probabilities of each model are
aggregated over the views of a study by a rule of :mod:`spinexr.evaluation.study_level`
(``max``, ``noisy_or``, ``mean``; a study is abnormal when any view is). Its operating threshold
is the study-level Youden threshold that ``tools/search_ensemble.py`` stores for that rule on
the out-of-fold studies (``study_thresholds``); a json without it falls back to the image-level
threshold, applied to the study probability, and the row's ``threshold_source`` says so.
"""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from ..evaluation.roc import roc_curve, summarize
from ..evaluation.study_level import RULES, study_level_summary

#: Statistics of a row; each has a ``<stat>_ci`` (lower, upper) entry too. Percent.
ROW_STATS = ('auroc', 'sensitivity', 'specificity', 'f1')


def _read_columns(predictions: Union[str, Mapping[str, object]]) -> Dict[str, np.ndarray]:
    """CSV path or a mapping of columns (e.g. a pandas DataFrame) -> dict of arrays."""
    if isinstance(predictions, str):
        if not osp.isfile(predictions):
            raise FileNotFoundError(f'prediction file not found: {predictions}')
        with open(predictions, newline='', encoding='utf-8') as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise ValueError(f'{predictions}: no rows')
        return {k: np.array([r[k] for r in rows]) for k in rows[0]}
    return {k: np.asarray(predictions[k]) for k in predictions.keys()}


def score_columns_of(columns: Mapping[str, object]) -> Dict[str, str]:
    """Default ``model name -> column``: ``prob`` is ``'ensemble'`` when members exist."""
    members = {c[len('prob_'):]: c for c in columns if c.startswith('prob_')}
    out = {}
    if 'prob' in columns:
        out['ensemble' if members else 'model'] = 'prob'
    out.update(members)
    return out


def _thresholds_for(names: List[str], thresholds) -> Dict[str, float]:
    if thresholds is None:
        return {n: 0.5 for n in names}
    if isinstance(thresholds, (int, float)):
        return {n: float(thresholds) for n in names}
    if isinstance(thresholds, str):
        with open(thresholds, encoding='utf-8') as f:
            payload = json.load(f)
        if str(payload.get('source', {}).get('split', '')).lower() == 'test':
            raise ValueError(f'{thresholds}: chosen on the test split; refusing (leakage)')
        member_thr = payload.get('member_thresholds', {})
        return {n: float(member_thr.get(n, payload['threshold'])) for n in names}
    missing = [n for n in names if n not in thresholds]
    if missing:
        raise KeyError(f'no threshold for {missing}')
    return {n: float(thresholds[n]) for n in names}


def classifier_rows(predictions: Union[str, Mapping[str, object]],
                    score_columns: Optional[Mapping[str, str]] = None,
                    thresholds: Union[None, float, str, Mapping[str, float]] = None,
                    n_bootstrap: int = 1000,
                    ci_level: float = 0.95,
                    seed: int = 0) -> List[dict]:
    """One comparison-table row per classifier: AUROC, sensitivity, specificity, F1 with CIs.

    Args:
        predictions (str | Mapping): Prediction CSV path, or columns (``label`` + scores).
        score_columns (Mapping[str, str], optional): ``model name -> score column``; default
            ``prob`` (named ``ensemble`` when ``prob_<member>`` columns exist) and every
            ``prob_<member>`` column (named ``<member>``).
        thresholds (None | float | str | Mapping): Operating thresholds: 0.5 for ``None``, one
            number for all, a ``tools/search_ensemble.py`` json (ensemble: ``threshold``;
            members: ``member_thresholds``), or ``model name -> threshold``.
        n_bootstrap (int): Bootstrap replicates (0: no CIs). They resample studies (the
            ``study_id`` column, all views of a study together); without that column images are
            resampled, with a logged warning.
        ci_level (float): CI coverage.
        seed (int): Bootstrap seed.

    Returns:
        list[dict]: Per model: ``model``, ``n_images``, ``n_abnormal``, ``threshold`` and, in
        percent, ``auroc``, ``sensitivity``, ``specificity``, ``f1`` with ``<stat>_ci`` =
        ``(lower, upper)`` (``None`` without bootstrap).
    """
    columns = _read_columns(predictions)
    if 'label' not in columns:
        raise KeyError('predictions need a "label" column')
    score_columns = dict(score_columns or score_columns_of(columns))
    labels = columns['label'].astype(np.int64)
    thr = _thresholds_for(list(score_columns), thresholds)
    study_ids = columns['study_id'].tolist() if 'study_id' in columns else None
    rows = []
    for name, col in score_columns.items():
        if col not in columns:
            raise KeyError(f'no column {col!r} (model {name}); columns: {sorted(columns)}')
        s = summarize(labels, columns[col].astype(np.float64), thr[name],
                      n_bootstrap=n_bootstrap, ci_level=ci_level, seed=seed,
                      study_ids=study_ids)
        row = dict(model=name, n_images=s['n_images'], n_abnormal=s['n_positive'],
                   threshold=thr[name])
        rows.append(_with_stats(row, s, n_bootstrap))
    return rows


def _with_stats(row: dict, summary: Mapping[str, float], n_bootstrap: int) -> dict:
    """``row`` with :data:`ROW_STATS` in percent and their CIs from a ``summarize`` dict."""
    if n_bootstrap > 0:
        row['bootstrap_units'] = summary['bootstrap_units']
    for k in ROW_STATS:
        row[k] = 100.0 * summary[k]
        row[f'{k}_ci'] = ((100.0 * summary[f'{k}_ci_lower'], 100.0 * summary[f'{k}_ci_upper'])
                          if n_bootstrap > 0 else None)
    return row


def has_study_ids(predictions: Union[str, Mapping[str, object]]) -> bool:
    """Whether the predictions carry a non-empty ``study_id`` on at least one row."""
    columns = _read_columns(predictions)
    return 'study_id' in columns and any(str(s).strip() for s in columns['study_id'])


def _study_thresholds_for(names: List[str], thresholds, rule: str
                          ) -> Tuple[Dict[str, float], str]:
    """Study-level thresholds and where they come from (see the module docstring)."""
    if isinstance(thresholds, str):
        with open(thresholds, encoding='utf-8') as f:
            study = (json.load(f).get('study_thresholds') or {}).get(rule)
        if study is not None:
            _thresholds_for(names, thresholds)  # the same leakage check on the json
            member_thr = study.get('member_thresholds', {})
            return ({n: float(member_thr.get(n, study['threshold'])) for n in names},
                    f'study-level Youden ({rule}) on out-of-fold studies')
        return (_thresholds_for(names, thresholds),
                'image-level threshold of the json, applied to the study probability')
    source = 'default 0.5' if thresholds is None else 'given'
    return _thresholds_for(names, thresholds), source


def study_rows(predictions: Union[str, Mapping[str, object]],
               rule: str = 'max',
               score_columns: Optional[Mapping[str, str]] = None,
               thresholds: Union[None, float, str, Mapping[str, float]] = None,
               n_bootstrap: int = 1000,
               ci_level: float = 0.95,
               seed: int = 0) -> List[dict]:
    """One STUDY-level row per classifier: views aggregated by ``rule``, then AUROC etc.

    Args:
        predictions (str | Mapping): As for :func:`classifier_rows`; a ``study_id`` column is
            required.
        rule (str): How a study's abnormal probability comes from its views, one of
            :data:`spinexr.evaluation.study_level.RULES`.
        score_columns (Mapping[str, str], optional): As for :func:`classifier_rows`.
        thresholds (None | float | str | Mapping): As for :func:`classifier_rows`; a
            ``tools/search_ensemble.py`` json contributes its ``study_thresholds[rule]`` when it
            has them (else its image-level thresholds, see ``threshold_source``).
        n_bootstrap (int): Bootstrap replicates over studies (0: no CIs).
        ci_level (float): CI coverage.
        seed (int): Bootstrap seed.

    Returns:
        list[dict]: :func:`classifier_rows`'s keys (``n_images`` and ``n_abnormal`` count
        studies here) plus ``level='study'``, ``rule``, ``n_studies`` and ``threshold_source``.

    Raises:
        KeyError: No ``label`` / ``study_id`` / score column.
        ValueError: Unknown rule, or an image without a study id (the message names it).
    """
    if rule not in RULES:
        raise ValueError(f'unknown study rule {rule!r}; choose from {RULES}')
    columns = _read_columns(predictions)
    for key in ('label', 'study_id'):
        if key not in columns:
            raise KeyError(f'study-level rows need a "{key}" column; columns: {sorted(columns)}')
    score_columns = dict(score_columns or score_columns_of(columns))
    labels = columns['label'].astype(np.int64)
    study_ids = columns['study_id'].tolist()
    thr, source = _study_thresholds_for(list(score_columns), thresholds, rule)
    rows = []
    for name, col in score_columns.items():
        if col not in columns:
            raise KeyError(f'no column {col!r} (model {name}); columns: {sorted(columns)}')
        s = study_level_summary(study_ids, columns[col].astype(np.float64), labels, thr[name],
                                rule=rule, n_bootstrap=n_bootstrap, ci_level=ci_level,
                                seed=seed)
        row = dict(model=name, level='study', rule=rule, n_studies=s['n_studies'],
                   n_images=s['n_images'], n_abnormal=s['n_positive'], threshold=thr[name],
                   threshold_source=source)
        rows.append(_with_stats(row, s, n_bootstrap))
    return rows


def format_rows_markdown(rows: List[dict]) -> str:
    """Markdown table of :func:`classifier_rows` output (value [CI low, CI high])."""
    head = ('| model | AUROC | sensitivity | specificity | F1 | threshold |\n'
            '|---|---|---|---|---|---|')

    def cell(row: dict, k: str) -> str:
        ci = row.get(f'{k}_ci')
        return f'{row[k]:.2f}' + (f' [{ci[0]:.2f}, {ci[1]:.2f}]' if ci else '')

    def name(row: dict) -> str:
        if row.get('level') == 'study':
            return f"{row['model']} (study, {row['rule']}, {row['n_studies']} studies)"
        return row['model']

    lines = [f"| {name(r)} | " + ' | '.join(cell(r, k) for k in ROW_STATS)
             + f" | {r['threshold']:.3f} |" for r in rows]
    return '\n'.join([head, *lines]) + '\n'


def plot_roc_curves(predictions: Union[str, Mapping[str, object]],
                    out_file: str,
                    score_columns: Optional[Mapping[str, str]] = None,
                    thresholds: Union[None, float, str, Mapping[str, float]] = None,
                    title: str = 'Abnormal vs normal (ROC)') -> str:
    """Draw the ROC curves of every model (and its operating point) into a PNG.

    Args:
        predictions (str | Mapping): As for :func:`classifier_rows`.
        out_file (str): PNG path.
        score_columns (Mapping[str, str], optional): As for :func:`classifier_rows`.
        thresholds: As for :func:`classifier_rows`; the operating points are marked.
        title (str): Figure title.

    Returns:
        str: ``out_file``.
    """
    # Agg canvas on a bare Figure: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = _read_columns(predictions)
    score_columns = dict(score_columns or score_columns_of(columns))
    labels = columns['label'].astype(np.int64)
    thr = _thresholds_for(list(score_columns), thresholds)
    fig = Figure(figsize=(5, 5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, col in score_columns.items():
        scores = columns[col].astype(np.float64)
        fpr, tpr, _ = roc_curve(labels, scores)
        s = summarize(labels, scores, thr[name], n_bootstrap=0)
        line, = ax.plot(fpr, tpr, lw=1.5, label=f'{name} (AUROC {100 * s["auroc"]:.1f})')
        ax.plot(1 - s['specificity'], s['sensitivity'], 'o', color=line.get_color())
    ax.plot([0, 1], [0, 1], '--', color='grey', lw=0.8)
    ax.set(xlabel='1 - specificity', ylabel='sensitivity', title=title, xlim=(0, 1),
           ylim=(0, 1.01))
    ax.legend(loc='lower right', fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    fig.savefig(out_file)
    return out_file
