"""The main job: generate the phantom, convert it, train every baseline briefly, print the table.

Runs :func:`spinexr.experiments.comparison.run_comparison`.

Examples:
    python -m spinexr.cli.run_comparison                 # cpu-demo on CPU, full on a GPU
    python tools/run_comparison.py                       # the same, from a checkout
    python tools/run_comparison.py --profile cpu-demo --work-dir work_dirs/comparison
    python tools/run_comparison.py --profile full --models faster-rcnn_r50_fpn retinanet_r50_fpn

Outputs WORK_DIR/results/comparison.{md,csv,json} and per_class_ap.png; see docs/comparison.md.
"""
import argparse

from spinexr.experiments.comparison import MODELS, PROFILES, run_comparison


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description='Run the detector comparison end to end')
    p.add_argument('--work-dir', default='work_dirs/comparison')
    p.add_argument('--profile', choices=sorted(PROFILES),
                   help='default: full with a CUDA GPU, else cpu-demo')
    p.add_argument('--models', nargs='+', choices=[m.name for m in MODELS],
                   help='subset of models (default: all)')
    p.add_argument('--seed', type=int, default=0, help='phantom seed')
    p.add_argument('--iters', type=int,
                   help='cpu-demo: train every iteration-based detector this many iterations '
                   '(default: each model\'s own, see spinexr.experiments.detector_configs.MODELS)')
    p.add_argument('--num-train', type=int, help='override the number of phantom train images')
    p.add_argument('--num-test', type=int, help='override the number of phantom test images')
    p.add_argument('--img-size', type=int, help='override the image size (longer side)')
    p.add_argument('--force', action='store_true', help='retrain models already trained')
    p.add_argument('--no-classifiers', action='store_true',
                   help='skip the classifier chain (CV, weight search, ensemble)')
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    overrides = {k: v for k, v in dict(iters=args.iters, num_train=args.num_train,
                                       num_test=args.num_test, img_size=args.img_size).items()
                 if v is not None}
    paths = run_comparison(args.work_dir, profile=args.profile, models=args.models,
                           seed=args.seed, force=args.force, overrides=overrides,
                           classifiers=not args.no_classifiers)
    print(open(paths['markdown']).read())
    print('written:', ', '.join(paths.values()))


if __name__ == '__main__':
    main()
