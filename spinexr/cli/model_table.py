"""The model table: evaluate several trained detectors on one test split, write one table.

Examples (``tools/analysis_tools/model_table.py`` in a checkout runs the same ``main``)::

    # work dirs of tools/train.py (config dumped by the Runner + last checkpoint)
    python -m spinexr.cli.model_table --work-dirs work_dirs/faster work_dirs/retina \
        --data-root data/vindr_spinexr --out-dir results/comparison
    # explicit pairs NAME=CONFIG:CHECKPOINT (CONFIG may be a shipped name: configs/x/y.py)
    python -m spinexr.cli.model_table \
        --models frcnn=configs/faster_rcnn/faster-rcnn_r50_fpn_12e_vindr-640.py:work_dirs/f/e12.pth

Writes OUT_DIR/comparison.{md,csv,json}, OUT_DIR/per_class_ap.png and OUT_DIR/froc.png (see
docs/comparison.md).
"""
import argparse
import json

from spinexr.analysis.model_table import ModelSpec, run_comparison_table, spec_from_work_dir


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line (``argv``: default ``sys.argv[1:]``)."""
    p = argparse.ArgumentParser(description='Compare detectors on one test split')
    p.add_argument('--work-dirs', nargs='*', default=[], help='training work dirs')
    p.add_argument('--models', nargs='*', default=[],
                   help='NAME=CONFIG:CHECKPOINT triples (CHECKPOINT may be empty: random init)')
    p.add_argument('--data-root', help='dataset root (default: each config\'s data_root)')
    p.add_argument('--ann-file', default='annotations/test.json',
                   help='test annotations, relative to --data-root')
    p.add_argument('--out-dir', default='results/comparison')
    p.add_argument('--device', help='cuda or cpu (default: cuda when available)')
    p.add_argument('--n-bootstrap', type=int, default=1000)
    p.add_argument('--score-thr', type=float, default=0.5,
                   help='operating box score for precision/recall (fix it before the test)')
    p.add_argument('--no-flops', action='store_true', help='skip the GFLOPs count')
    p.add_argument('--extra-rows', help='json list of extra rows (e.g. classifier results '
                   'with model, AUROC, sensitivity, specificity, F1 as fractions)')
    return p.parse_args(argv)


def main(argv=None) -> None:
    """Evaluate the models, write the table files and print the Markdown table."""
    args = parse_args(argv)
    specs = [spec_from_work_dir(w) for w in args.work_dirs]
    for item in args.models:
        name, _, rest = item.partition('=')
        config, _, ckpt = rest.rpartition(':') if rest.endswith(('.pth', ':')) else (rest, '', '')
        specs.append(ModelSpec(name=name, config=config, checkpoint=ckpt or None))
    if not specs:
        raise SystemExit('nothing to compare: give --work-dirs and/or --models')
    extra = json.load(open(args.extra_rows)) if args.extra_rows else []
    _, paths = run_comparison_table(specs, args.out_dir, data_root=args.data_root,
                                    ann_file=args.ann_file, device=args.device,
                                    n_bootstrap=args.n_bootstrap, score_thr=args.score_thr,
                                    count_flops=not args.no_flops, extra_rows=extra)
    print(open(paths['markdown']).read())
    print('written:', ', '.join(paths.values()))


if __name__ == '__main__':
    main()
