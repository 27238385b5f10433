"""Write the combined checkpoint of a WeightedEnsembleClassifier config (all members' weights),
the CHECKPOINT argument of ``tools/test.py`` for the ensemble.

Example:
    python tools/model_converters/ensemble_checkpoint.py \\
        configs/classifiers/ensemble_vindr-384.py \\
        --cfg-options model.members.0.checkpoint=work_dirs/densenet121/best.pth \\
                      model.members.1.checkpoint=work_dirs/efficientnetv2-s/best.pth \\
                      model.members.2.checkpoint=work_dirs/resnet50/best.pth \\
        --out work_dirs/ensemble/ensemble.pth
"""
import argparse

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description='Combine ensemble members into one checkpoint')
    parser.add_argument('config', help='ensemble config')
    parser.add_argument('--out', required=True, help='output .pth')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='e.g. model.members.0.checkpoint=PATH')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmpretrain.registry import MODELS

    from spinexr.models.classifiers.ensemble import save_ensemble_checkpoint
    missing = [m.get('name', i) for i, m in enumerate(cfg.model.members) if not m.get('checkpoint')]
    if missing:
        raise ValueError(f'members without checkpoint: {missing}; set '
                         'model.members.<i>.checkpoint=PATH')
    model = MODELS.build(cfg.model)
    save_ensemble_checkpoint(model, args.out)
    print(f'written: {args.out}')
    return args.out


if __name__ == '__main__':
    main()
