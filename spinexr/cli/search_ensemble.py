"""Choose the ensemble weights (0.05 grid, max AUROC) and threshold (Youden's J) on OUT-OF-FOLD
validation predictions, and write them to a json the ensemble config reads.

``--average logit`` searches for an ensemble that averages logits (the VinDr paper's DenseNet
ensemble, ``configs/classifiers/ensemble-densenet_vindr-384.py``); the ensemble refuses a json
searched for the other mode.

Refuses predictions from the test split, tables without a ``fold`` column, and (with
``--test-ann-file``) any table containing a test image.

Example:
    python -m spinexr.cli.search_ensemble work_dirs/cv/oof_predictions.csv \\
        --members densenet121 efficientnetv2-s resnet50 \\
        --out work_dirs/cv/ensemble_search.json \\
        --test-ann-file data/vindr_spinexr/annotations/test.json
    # (or tools/search_ensemble.py) then: tools/test.py configs/classifiers/ensemble_vindr-384.py
    #   CKPT --cfg-options model.weights_file=work_dirs/cv/ensemble_search.json \\
    #   test_evaluator.threshold=work_dirs/cv/ensemble_search.json
"""
import argparse
import json

from spinexr.models.classifiers.ensemble_search import search_ensemble


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Search ensemble weights on OOF predictions')
    parser.add_argument('predictions', help='oof_predictions.csv of the cross-validation')
    parser.add_argument('--out', required=True, help='output json')
    parser.add_argument('--members', nargs='+', help='member names, in the ensemble order')
    parser.add_argument('--step', type=float, default=0.05, help='weight grid step')
    parser.add_argument('--test-ann-file', help='test COCO json: refuse if any image is in it')
    parser.add_argument('--average', choices=('prob', 'logit'), default='prob',
                        help="how the ensemble combines its members (its model.average); "
                             "'logit' for configs/classifiers/ensemble-densenet_vindr-384.py")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    payload = search_ensemble(args.predictions, args.out, members=args.members, step=args.step,
                              test_ann_file=args.test_ann_file, average=args.average)
    print(json.dumps({k: payload[k] for k in ('weights', 'threshold', 'average', 'oof')},
                     indent=1))
    print(f'written: {args.out}')
    return payload


if __name__ == '__main__':
    main()
