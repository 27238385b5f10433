# spinexr's plugin settings, and only those, so this file can sit beside ANY base in a config's
# `_base_` list without duplicate keys:
#   _base_ = ['mmdet::retinanet/retinanet_r50_fpn_1x_coco.py', '../_base_/default_runtime.py']
#   _base_ = ['mmdet::_base_/default_runtime.py', '../_base_/default_runtime.py', ...]
# (a config that does not inherit a full mmdet config must list mmdet::_base_/default_runtime.py
# itself).
custom_imports = dict(imports=['spinexr'], allow_failed_imports=False)
# SpinexrRunner = mmengine's Runner whose resume/load_from work under torch>=2.6 weights_only
# loading with an explicit allow-list (spinexr/engine/checkpoint.py), and which trains
# multi-process on CPU (gloo).
runner_type = 'SpinexrRunner'
