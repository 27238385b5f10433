"""ROC curves (PNG) and the table rows (AUROC, sensitivity, specificity, F1 with 95% CIs) of the
ensemble and its members from a test prediction CSV, per image and (``--study-rule``, default
``max``) per study: the views of a study aggregated by the rule, at the search json's study-level
threshold (``study_thresholds``) or else its image-level one.

Example (``tools/analysis_tools/classifier_report.py`` in a checkout runs the same ``main``)::

    python -m spinexr.cli.classifier_report \\
        work_dirs/ensemble_vindr-384/test_predictions.csv \\
        --thresholds work_dirs/cv/ensemble_search.json --out-dir work_dirs/ensemble_vindr-384
    # -> roc.png, classifier_table.md, classifier_rows.json
"""
import argparse
import json
import os
import os.path as osp

from spinexr.analysis.classifier_report import (classifier_rows, format_rows_markdown,
                                                has_study_ids, plot_roc_curves, study_rows)
from spinexr.evaluation.study_level import RULES


def main(argv=None) -> list:
    """Write the ROC curves and the table rows; return the rows."""
    parser = argparse.ArgumentParser(description='ROC curves and table rows of classifiers')
    parser.add_argument('predictions', help='CSV of BinaryClsMetric(prediction_file=...)')
    parser.add_argument('--thresholds', help='json of tools/search_ensemble.py, or a number '
                        '(default 0.5); never chosen on these predictions')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument('--n-bootstrap', type=int, default=1000)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--study-rule', default='max', choices=[*RULES, 'none'],
                        help="study-level rows: a study's abnormal probability from its views "
                        "(max, noisy_or, mean; 'none': image rows only). Default: max")
    args = parser.parse_args(argv)
    thresholds = args.thresholds
    if thresholds is not None and not osp.isfile(thresholds):
        thresholds = float(thresholds)
    rows = classifier_rows(args.predictions, thresholds=thresholds,
                           n_bootstrap=args.n_bootstrap, seed=args.seed)
    if args.study_rule != 'none' and not has_study_ids(args.predictions):
        print(f'{args.predictions}: no study_id column (or all empty): no study-level rows')
    elif args.study_rule != 'none':
        rows += study_rows(args.predictions, rule=args.study_rule, thresholds=thresholds,
                           n_bootstrap=args.n_bootstrap, seed=args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    plot_roc_curves(args.predictions, osp.join(args.out_dir, 'roc.png'), thresholds=thresholds)
    table = format_rows_markdown(rows)
    with open(osp.join(args.out_dir, 'classifier_table.md'), 'w', encoding='utf-8') as f:
        f.write(table)
    with open(osp.join(args.out_dir, 'classifier_rows.json'), 'w', encoding='utf-8') as f:
        json.dump(rows, f, indent=1)
    print(table)
    return rows


if __name__ == '__main__':
    main()
