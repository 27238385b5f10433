# YOLO11-l on VinDr-SpineXR with the recipe of the paper draft this project started from,
# trained by the mmengine Runner:
#   SGD (momentum 0.9, nesterov), lr 0.01, 3 warm-up epochs then cosine to 0.01 x lr, wd 5e-4,
#   batch 12 x 4 accumulation = 48 (Ultralytics' accumulation: summed, ramped 1 -> 4 during the
#   warm-up), 35 epochs, EMA (Ultralytics' schedule), mosaic off for the last 10 epochs,
#   mixup 0.1, Ultralytics' HSV (gains 0.015 / 0.7 / 0.4), horizontal flip, multi-scale 480-768,
#   AMP via --amp.
#   tools/train.py configs/yolo11/yolo11l_35e_vindr-640.py [--amp] \
#       [--cfg-options model.pretrained=/path/yolo11l.pt]
#   Multi-GPU: tools/dist_train.sh ... with --cfg-options sync_bn=torch for SyncBN.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/yolo11.py',
    '../_base_/datasets/vindr_spinexr_detection.py',
]

img_scale = (640, 640)  # (w, h)
max_epochs = 35
close_mosaic_epochs = 10
train_batch_size = 12
accumulative_counts = 4  # 12 x 4 = 48 images per optimizer step
mixup_prob = 0.1

model = dict(
    model_yaml='yolo11l.yaml',
    data_preprocessor=dict(batch_augments=[
        # Multi-scale: every batch is resized to a random multiple of 32 in [480, 768].
        # (mmdet's BatchSyncRandomResize with the size draw kept on the host: no device sync)
        dict(type='YOLOBatchSyncRandomResize', random_size_range=(480, 768), size_divisor=32,
             interval=1)
    ]))

# Ultralytics' images are grey PNGs here; load them as 3-channel (the network takes RGB).
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    # mmdet's CachedMosaic (same mosaics, bit for bit) with a cache of tile-sized images and
    # no deep copies of the samples.
    dict(type='YOLOCachedMosaic', img_scale=img_scale, pad_val=114.0, max_cached_images=40,
         random_pop=False),
    # CachedMosaic passes the first samples of each worker through unchanged until its cache
    # holds 5 images; fit those into the (2w, 2h) mosaic canvas too (mmdet's Resize + Pad), so
    # the affine crop below always gets a canvas (real mosaics already are one: left as they are).
    dict(type='FitMosaicCanvas', scale=(2 * img_scale[0], 2 * img_scale[1]),
         pad_val=(114, 114, 114)),
    # Ultralytics' affine (RandomPerspective without perspective): scaled/translated about the
    # canvas centre, where the four tiles meet, and boxes cut to slivers dropped.
    dict(type='YOLORandomAffine', max_rotate_degree=0.0, max_translate_ratio=0.1,
         scaling_ratio_range=(0.5, 1.5), max_shear_degree=0.0,
         border=(-img_scale[0] // 2, -img_scale[1] // 2), border_val=(114, 114, 114)),
    dict(type='CachedMixUp', img_scale=img_scale, ratio_range=(1.0, 1.0), flip_ratio=0.0,
         pad_val=114.0, max_cached_images=20, random_pop=False, prob=mixup_prob),
    dict(type='UltralyticsHSVRandomAug', hue_gain=0.015, saturation_gain=0.7, value_gain=0.4),
    dict(type='RandomFlip', prob=0.5),
    # keep_empty=False keeps images left without boxes: the "No finding" negatives.
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
# Last `close_mosaic_epochs` epochs, without mosaic/mixup: the image resized to the long side
# and warped into the (w, h) output about its centre (a centred letterbox plus the random affine,
# as Ultralytics does after closing the mosaic).
train_pipeline_stage2 = [
    dict(type='LoadImageFromFile', color_type='color', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='YOLORandomAffine', max_rotate_degree=0.0, max_translate_ratio=0.1,
         scaling_ratio_range=(0.5, 1.5), max_shear_degree=0.0, size=img_scale,
         border_val=(114, 114, 114)),
    dict(type='UltralyticsHSVRandomAug', hue_gain=0.015, saturation_gain=0.7, value_gain=0.4),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='color', backend_args=None),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'image_id',
                    'study_id')),
]

# yolo_collate stacks each batch into one padded uint8 tensor in the loader worker, pinned, so the
# data preprocessor copies it to the GPU in one non-blocking transfer (as Ultralytics' loader).
yolo_loader = dict(collate_fn=dict(type='yolo_collate'), pin_memory=True)
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=8,
    persistent_workers=True,
    **yolo_loader,
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=16, num_workers=4, **yolo_loader,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# The network sees a handful of input sizes (multi-scale 480-768 in steps of 32; the test size):
# let cuDNN pick its fastest kernels for each once.
env_cfg = dict(cudnn_benchmark=True)

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Ultralytics' optimizer: three parameter groups (weights with decay; BN weights and biases
# without), gradient norm clipped at 10, gradients of the accumulated iterations summed and the
# accumulation ramped from 1 to 4 during the warm-up (YOLOOptimWrapper + YOLOParamSchedulerHook).
# Weight-decay rule: Ultralytics uses weight_decay x batch x accumulate / nbs with
# accumulate = round(nbs / batch); the paper draft's nominal batch is nbs = 12 x 4 = 48, so the
# decay is its 5e-4 unchanged (with Ultralytics' default nbs 64 it would be 5e-4 x 60 / 64).
nominal_batch_size = train_batch_size * accumulative_counts
optim_wrapper = dict(
    type='YOLOOptimWrapper',
    constructor='YOLOOptimWrapperConstructor',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True,
                   weight_decay=5e-4 * train_batch_size * accumulative_counts / nominal_batch_size),
    clip_grad=dict(max_norm=10.0),
    accumulative_counts=accumulative_counts)

# lr / momentum follow Ultralytics' trainer exactly (YOLOParamSchedulerHook): 3 warm-up epochs
# (lr 0 -> 0.01, bias lr 0.1 -> 0.01, momentum 0.8 -> 0.9), then cosine to lrf x lr.
param_scheduler = None

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # No save_best: val here is the test split (monitoring only). To select a checkpoint, inherit
    # ../_base_/datasets/vindr_spinexr_detection_holdout.py and add save_best='coco/bbox_mAP_50'.
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
custom_hooks = [
    dict(type='YOLOParamSchedulerHook', lrf=0.01, cos_lr=True, warmup_epochs=3.0,
         warmup_momentum=0.8, warmup_bias_lr=0.1),
    # Ultralytics' ModelEMA(decay=0.9999, tau=2000), updated once per optimizer step; YOLOModelEMA
    # is mmdet's ExpMomentumEMA arithmetic with one fused update and no device-to-host sync.
    dict(type='YOLOEMAHook', ema_type='YOLOModelEMA', momentum=0.0001, gamma=2000,
         update_buffers=True, priority=49),
    # the last close_mosaic_epochs of the run as trained: switches at epoch
    # max_epochs - close_mosaic_epochs, computed from train_cfg.max_epochs when training starts
    # (so --cfg-options train_cfg.max_epochs=N moves it), as Ultralytics' close_mosaic
    dict(type='CloseMosaicHook', close_epochs=close_mosaic_epochs,
         switch_pipeline=train_pipeline_stage2),
]

# Nothing is fetched: start from scratch or from model.pretrained (a local Ultralytics .pt).
load_from = None
# sync_bn = 'torch'  # multi-GPU only
