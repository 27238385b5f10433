# Runtime of every spinexr detection config: MMDetection's default runtime (hooks, visualizer,
# logging, env) plus spinexr's plugin settings. List it beside mmdet's model/schedule bases:
#   _base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet::_base_/schedules/schedule_1x.py',
#             '../_base_/datasets/vindr_spinexr_detection.py', '../_base_/default_runtime.py']
# (a full mmdet *_coco.py already carries mmdet's runtime and dataset, so it cannot be combined
# with these bases: mmengine refuses duplicate keys among bases).
_base_ = 'mmdet::_base_/default_runtime.py'

# mmengine does not carry `default_scope` over from a base of another package, so state it.
default_scope = 'mmdet'
custom_imports = dict(imports=['spinexr'], allow_failed_imports=False)
# SpinexrRunner = mmengine's Runner whose resume/load_from work under torch>=2.6 weights_only
# loading with an explicit allow-list (spinexr/engine/checkpoint.py), and which trains
# multi-process on CPU (gloo).
runner_type = 'SpinexrRunner'

# Test-time augmentation (tools/test.py --tta, or --cfg-options tta.enable=True): the test
# pipeline's Resize at each scale factor, each view also flipped horizontally, merged per image by
# weighted boxes fusion (spinexr.models.test_time_aug; Ultralytics' YOLO TTA scales).
tta = dict(enable=False, scales=(1.0, 0.83, 0.67), flip=True,
           fusion=dict(method='wbf', iou_thr=0.55, skip_box_thr=0.0, conf_type='avg'),
           max_per_img=100)
