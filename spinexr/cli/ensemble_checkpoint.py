"""Write the combined checkpoint of a WeightedEnsembleClassifier config (all members' weights),
the CHECKPOINT argument of ``python -m spinexr.cli.test`` (``tools/test.py``) for the ensemble.

Example:
    python -m spinexr.cli.ensemble_checkpoint configs/classifiers/ensemble_vindr-384.py \\
        --cfg-options model.members.0.checkpoint=work_dirs/densenet121/best.pth \\
                      model.members.1.checkpoint=work_dirs/efficientnetv2-s/best.pth \\
                      model.members.2.checkpoint=work_dirs/resnet50/best.pth \\
        --out work_dirs/ensemble/ensemble.pth
    # the same: python tools/model_converters/ensemble_checkpoint.py ...
"""
import argparse

from mmengine.config import DictAction

from spinexr.experiments.classifier_chain import write_ensemble_checkpoint


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Combine ensemble members into one checkpoint')
    parser.add_argument('config', help='ensemble config')
    parser.add_argument('--out', required=True, help='output .pth')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='e.g. model.members.0.checkpoint=PATH')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    out = write_ensemble_checkpoint(args.config, args.out, cfg_options=args.cfg_options)
    print(f'written: {out}')
    return out


if __name__ == '__main__':
    main()
