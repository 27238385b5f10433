"""Export a spinexr YOLO11 checkpoint to an Ultralytics .pt (``ultralytics.YOLO(path)`` loads it).

Examples:
    python tools/model_converters/spinexr_to_ultralytics.py \
        configs/yolo11/yolo11l_35e_vindr-640.py \
        work_dirs/yolo11l_35e_vindr-640/epoch_35.pth yolo11l_vindr.pt
    yolo predict model=yolo11l_vindr.pt source=some.png imgsz=640 iou=0.65
"""
import argparse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Export a spinexr YOLO11 checkpoint to Ultralytics')
    parser.add_argument('config', help='config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='spinexr (mmengine) checkpoint .pth')
    parser.add_argument('out', help='output Ultralytics weights (.pt)')
    parser.add_argument('--imgsz', type=int, default=640, help='default inference size')
    parser.add_argument('--half', action='store_true', help='store FP16 weights like Ultralytics')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import spinexr.engine  # noqa: F401  (registers the components)
    import spinexr.models  # noqa: F401
    from mmdet.registry import MODELS
    from spinexr.datasets.metainfo import CLASSES
    from spinexr.engine.checkpoint import load_checkpoint
    from spinexr.models.detectors.ultralytics_export import save_ultralytics_pt

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.model.pretrained = None
    model = MODELS.build(cfg.model)
    ckpt = load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    names = (ckpt.get('meta', {}).get('dataset_meta') or {}).get('classes') or CLASSES
    save_ultralytics_pt(model, args.out, class_names=list(names), imgsz=args.imgsz, half=args.half)
    print(f'wrote {args.out} ({len(names)} classes)')


if __name__ == '__main__':
    main()
