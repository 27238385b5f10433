"""Find lesions in DICOM / PNG / JPEG files: findings JSON + CSV and overlay PNGs.

Examples:
    python tools/infer.py study_dicoms/ --config configs/yolo11/yolo11l_35e_vindr-640.py \
        --checkpoint work_dirs/yolo11l/epoch_35.pth --out results/ --device cuda --fp16
    python tools/infer.py list.csv a.dicom b.png --config C --checkpoint K \
        --classifier configs/classifiers/ensemble_vindr-384.py ensemble.pth --fusion-threshold 0.4

Outputs under --out: findings.json, findings.csv (boxes x1,y1,x2,y2 in ORIGINAL image pixels),
studies.csv (one row per study, also under "studies" in the JSON), failures.txt,
overlays/<image_id>.png. Exit status 1 only if no input could be read.
"""
import argparse
import sys


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Batched DICOM/PNG-to-findings inference')
    p.add_argument('inputs', nargs='+', metavar='INPUT',
                   help='DICOM/PNG/JPEG files, folders (recursive), .txt/.csv lists of paths')
    p.add_argument('--config', required=True, help='detector config')
    p.add_argument('--checkpoint', required=True, help='detector checkpoint (.pth)')
    p.add_argument('--classifier', nargs=2, metavar=('CONFIG', 'CKPT'),
                   help='image classifier (mmpretrain or ensemble) for the abnormal probability')
    p.add_argument('--fusion-threshold', type=float, default=None,
                   help='decision fusion: below this abnormal probability keep only boxes with '
                   'score > 0.5 (choose it on validation data, never on test labels)')
    p.add_argument('--study-rule', default='max', choices=['max', 'noisy_or', 'mean'],
                   help="a study's abnormal probability from its views' (default: max)")
    p.add_argument('--study-map', metavar='FILE',
                   help='COCO json (images[].study_id) or CSV (study_id + image_id or path) '
                   "giving each image's study; default: a DICOM's StudyInstanceUID, else the "
                   'image alone')
    p.add_argument('--out', default='infer_out', help='output folder (default: infer_out)')
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--workers', type=int, default=2,
                   help='decoding processes (0: one decoding thread in this process)')
    p.add_argument('--device', default='cpu', help="'cpu', 'cuda' or 'cuda:N'")
    p.add_argument('--score-thr', type=float, default=0.05, help='drop boxes at or below it')
    p.add_argument('--fp16', action='store_true', help='half precision (CUDA only)')
    p.add_argument('--no-overlays', action='store_true', help='do not write overlay PNGs')
    p.add_argument('--overlay-size', type=int, default=1024,
                   help='with a reduced DICOM decode, overlays keep at least this longer side')
    p.add_argument('--resize-mode', default='auto',
                   choices=['auto', 'pipeline', 'bilinear', 'area'],
                   help="'auto': the config's interpolation, area when shrinking a DICOM")
    p.add_argument('--full-decode', action='store_true',
                   help='always decode DICOMs at full resolution (no reduced JPEG 2000 decode)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override detector config settings, key=value')
    args = p.parse_args(argv)
    if args.fusion_threshold is not None and not args.classifier:
        p.error('--fusion-threshold needs --classifier CONFIG CKPT')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.fp16 and not args.device.startswith('cuda'):
        print('--fp16 applies to CUDA only; running in float32 on the CPU', file=sys.stderr)
    from spinexr.apis.inference import run_inference
    summary = run_inference(
        args.inputs, args.config, args.checkpoint, out_dir=args.out, classifier=args.classifier,
        fusion_threshold=args.fusion_threshold, batch_size=args.batch_size, workers=args.workers,
        device=args.device, score_thr=args.score_thr, fp16=args.fp16,
        overlays=not args.no_overlays, resize_mode=args.resize_mode,
        fast_decode=not args.full_decode, overlay_size=args.overlay_size,
        progress=not args.no_progress,
        cfg_options=args.cfg_options, study_rule=args.study_rule, study_map=args.study_map)
    n_boxes = sum(len(r['findings']) for r in summary['images'])
    print(f"{summary['num_images']} images ({len(summary['studies'])} studies), {n_boxes} "
          f"findings in {summary['seconds']:.1f} s "
          f"({summary['images_per_s']:.1f} images/s) -> {args.out}")
    if summary['failures']:
        print(f"{len(summary['failures'])} input(s) could not be read "
              f"(also in {summary['outputs'].get('failures')}):", file=sys.stderr)
        for path, reason in summary['failures']:
            print(f'  {reason}' if str(path) in reason else f'  {path}: {reason}', file=sys.stderr)
    return 0 if summary['num_images'] > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
