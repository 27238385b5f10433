"""Fuse saved detector predictions (weighted boxes fusion, NMS or soft-NMS) and score them.

Two steps, both driven by an ensemble config (``configs/ensembles/wbf_vindr-640.py``):

1. ``--search``: choose member weights, ``iou_thr`` and ``skip_box_thr`` (max mAP@0.5) on the
   members' predictions on a study-grouped hold-out of train (``search.ann_file``); writes
   ``search.out``. Refuses a search split named test and any prediction of a test image.
2. Without ``--search``: fuse the members' test predictions (with ``ensemble.params_file`` when
   set), write them in ``tools/test.py --out``'s layout and the metrics (mAP with study-bootstrap
   interval, FROC) as json.

Example:
    python tools/fuse_detections.py configs/ensembles/wbf_vindr-640.py --search
    python tools/fuse_detections.py configs/ensembles/wbf_vindr-640.py \\
        --cfg-options ensemble.params_file=work_dirs/ens/wbf_params.json
"""
import argparse
import json
from pathlib import Path

from mmengine.config import Config, DictAction


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description='Fuse saved detector predictions')
    parser.add_argument('config', help='ensemble config (configs/ensembles/)')
    parser.add_argument('--search', action='store_true',
                        help='search fusion parameters on the hold-out predictions')
    parser.add_argument('--data-root', help="dataset root replacing the config's data_root")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. ensemble.params_file=P.json')
    args = parser.parse_args(argv)

    from mmdet.registry import TASK_UTILS

    from spinexr.apis import detector_ensemble as de
    from spinexr.utils.data_root import resolve_data_root
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    resolve_data_root(cfg, args.data_root)  # every '{data_root}' path
    ens_cfg = cfg.ensemble.to_dict()
    if args.search:
        ens_cfg['params_file'] = None  # the search does not read an earlier result
    ensemble = TASK_UTILS.build(ens_cfg)
    if args.search:
        s = cfg.search
        payload = de.run_search(
            ensemble.pred_files('holdout'), s.ann_file, s.out,
            test_ann_file=cfg.get('test_ann_file'), split=s.get('split', 'train'),
            method=ensemble.method, conf_type=ensemble.conf_type,
            weight_levels=tuple(s.get('weight_levels', (1.0, 2.0, 3.0))),
            iou_thrs=tuple(s.get('iou_thrs', (0.4, 0.5, 0.55, 0.6, 0.7))),
            skip_box_thrs=tuple(s.get('skip_box_thrs', (0.0, 0.01, 0.05))))
        print(json.dumps({k: payload[k] for k in ('method', 'weights', 'iou_thr', 'skip_box_thr',
                                                   'mAP_50', 'n_candidates')}, indent=1))
        print(f'written: {s.out}')
        return payload
    preds = ensemble.fuse(ensemble.pred_files('test'), cfg.test_ann_file)
    de.write_predictions(preds, cfg.test_ann_file, cfg.out_predictions)
    metrics = de.evaluate_fused(preds, cfg.test_ann_file, n_bootstrap=cfg.get('n_bootstrap', 1000))
    metrics = dict(metrics, method=ensemble.method, weights=dict(zip(ensemble.names,
                                                                     ensemble.weights)),
                   iou_thr=ensemble.iou_thr, skip_box_thr=ensemble.skip_box_thr,
                   params_file=ensemble.params_file)
    Path(cfg.out_metrics).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.out_metrics).write_text(json.dumps(metrics, indent=1))
    lo, hi = metrics.get('mAP_50_ci_low', float('nan')), metrics.get('mAP_50_ci_high', float('nan'))
    froc = metrics.get('FROC_mean', float('nan'))
    print(f'fused ({ensemble.method}): mAP@0.5 {100 * metrics["mAP_50"]:.1f} '
          f'[{100 * lo:.1f}, {100 * hi:.1f}], FROC mean {froc:.3f}')
    print(f'written: {cfg.out_predictions}, {cfg.out_metrics}')
    return metrics


if __name__ == '__main__':
    main()
