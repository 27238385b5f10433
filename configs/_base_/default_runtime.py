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
