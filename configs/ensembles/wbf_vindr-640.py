# Weighted boxes fusion of three detectors' saved predictions (tools/fuse_detections.py).
#
# Each member is a detector trained on train_split.json (a config inheriting
# configs/_base_/datasets/vindr_spinexr_detection_holdout.py), so none saw the hold-out
# val_split.json. Its predictions come from tools/test.py --out, once on the hold-out (for the
# search) and once on test:
#   python tools/test.py CONFIG CKPT --out work_dirs/ens/<name>_holdout.pkl \
#       --cfg-options test_dataloader.dataset.ann_file=annotations/val_split.json \
#                     "test_evaluator.ann_file={data_root}/annotations/val_split.json"
#   python tools/test.py CONFIG CKPT --out work_dirs/ens/<name>_test.pkl
# Then search on the hold-out (writes params_file) and fuse the test predictions:
#   python tools/fuse_detections.py configs/ensembles/wbf_vindr-640.py --search
#   python tools/fuse_detections.py configs/ensembles/wbf_vindr-640.py \
#       --cfg-options ensemble.params_file=work_dirs/ens/wbf_params.json
data_root = 'data/vindr_spinexr'
work_dir = 'work_dirs/ens'

ensemble = dict(
    type='DetectionEnsemble',
    members=[
        dict(name='yolo11l', holdout=f'{work_dir}/yolo11l_holdout.pkl',
             test=f'{work_dir}/yolo11l_test.pkl'),
        dict(name='faster-rcnn', holdout=f'{work_dir}/faster-rcnn_holdout.pkl',
             test=f'{work_dir}/faster-rcnn_test.pkl'),
        dict(name='retinanet', holdout=f'{work_dir}/retinanet_holdout.pkl',
             test=f'{work_dir}/retinanet_test.pkl'),
    ],
    method='wbf',  # or 'nms', 'soft_nms'
    iou_thr=0.55,
    skip_box_thr=0.0,
    conf_type='avg',
    params_file=None)  # json of the --search step; None: equal weights and the values above

# The search: study-grouped hold-out of train (never test), grids of weights per member and
# thresholds; objective mAP@0.5 of spinexr.evaluation.det_summary.summarize_detections.
search = dict(
    ann_file='{data_root}/annotations/val_split.json',  # resolved by the tool (--data-root)
    split='train',
    out=f'{work_dir}/wbf_params.json',
    weight_levels=(1.0, 2.0, 3.0),
    iou_thrs=(0.4, 0.5, 0.55, 0.6, 0.7),
    skip_box_thrs=(0.0, 0.01, 0.05))

test_ann_file = '{data_root}/annotations/test.json'
out_predictions = f'{work_dir}/fused_test.pkl'
out_metrics = f'{work_dir}/fused_test_metrics.json'
n_bootstrap = 1000
