# RT-DETR-l on VinDr-SpineXR with Ultralytics' own RT-DETR training recipe (ultralytics 8.4,
# RTDETRTrainer = DetectionTrainer + RTDETRDetectionModel + RTDETRDataset), trained by the
# mmengine Runner:
#   tools/train.py configs/rtdetr/rtdetr-l_72e_vindr-640.py \
#       [--cfg-options model.pretrained=/path/rtdetr-l.pt]
# Ultralytics trains with AMP by default (amp: True): add --amp for that (its RTDETRTrainer notes
# that AMP can give NaN outputs / errors in the bipartite matching).
#
# Hyper-parameters and where they come from (Ultralytics' cfg/default.yaml unless stated):
# * imgsz 640, batch 16, nbs 64 -> gradients of 4 batches summed per optimizer step (accumulation
#   ramped 1 -> 4 during warm-up); weight decay 5e-4 x 16 x 4 / 64 = 5e-4.
# * optimizer 'auto' (BaseTrainer.build_optimizer): iterations = ceil(8389 train images /
#   max(16, 64)) x epochs = 132 x 72 = 9504 <= 10000, so AdamW with lr0 = round(0.002 x 5 /
#   (4 + nc), 6) = 0.000909 for nc = 7, betas (0.9, 0.999), warmup_bias_lr set to 0.0. (With
#   Ultralytics' default 100 epochs, 13200 iterations, 'auto' would pick MuSGD, lr 0.01, which
#   spinexr does not have; 72 epochs is also RT-DETR's 6x schedule.) Groups: weights with decay,
#   norm weights and biases without.
# * lr: 3 warm-up epochs (0 -> lr0, bias 0 -> lr0; AdamW has no momentum to warm up), then LINEAR
#   decay to lrf = 0.01 x lr0 (cos_lr False); gradient norm clipped at 10; EMA (0.9999, tau 2000).
# * augmentation (v8_transforms as for YOLO): mosaic 1.0 with each image first STRETCHED to
#   640 x 640 (RTDETRDataset.load_image uses rect_mode=False: cv2.resize to the square, no aspect
#   ratio kept), random affine (translate 0.1, scale 0.5, no rotation/shear), mixup 0.0, HSV
#   (0.015, 0.7, 0.4), horizontal flip 0.5; mosaic closed for the last 10 epochs; no multi-scale.
# * test: stretched to 640 x 640, as Ultralytics' validator (the same load_image; its LetterBox is
#   then a no-op on the square) and RTDETRPredictor (scale_fill=True); conf 0.001, max_det 300.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/rtdetr.py',
    '../_base_/datasets/vindr_spinexr_detection.py',
]

img_scale = (640, 640)  # (w, h)
max_epochs = 72
close_mosaic_epochs = 10
train_batch_size = 16
nominal_batch_size = 64  # Ultralytics' nbs
accumulative_counts = max(round(nominal_batch_size / train_batch_size), 1)  # 4
num_classes = 7
lr0 = round(0.002 * 5 / (4 + num_classes), 6)  # Ultralytics' 'auto' AdamW lr: 0.000909

model = dict(model_yaml='rtdetr-l.yaml', num_classes=num_classes)

# Ultralytics' images are grey PNGs here; load them as 3-channel (the network takes RGB).
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='color', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    # RTDETRDataset.load_image: every image stretched to imgsz x imgsz before the mosaic.
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='YOLOCachedMosaic', img_scale=img_scale, pad_val=114.0, max_cached_images=40,
         random_pop=False),
    dict(type='FitMosaicCanvas', scale=(2 * img_scale[0], 2 * img_scale[1]),
         pad_val=(114, 114, 114)),
    dict(type='YOLORandomAffine', max_rotate_degree=0.0, max_translate_ratio=0.1,
         scaling_ratio_range=(0.5, 1.5), max_shear_degree=0.0,
         border=(-img_scale[0] // 2, -img_scale[1] // 2), border_val=(114, 114, 114)),
    dict(type='UltralyticsHSVRandomAug', hue_gain=0.015, saturation_gain=0.7, value_gain=0.4),
    dict(type='RandomFlip', prob=0.5),
    # keep_empty=False keeps images left without boxes: the "No finding" negatives.
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs'),
]
# Last `close_mosaic_epochs` epochs: the stretched image through the random affine only.
train_pipeline_stage2 = [
    dict(type='LoadImageFromFile', color_type='color', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=False),
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
    dict(type='Resize', scale=img_scale, keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'image_id',
                    'study_id')),
]

yolo_loader = dict(collate_fn=dict(type='yolo_collate'), pin_memory=True)
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=8,
    persistent_workers=True,
    **yolo_loader,
    dataset=dict(pipeline=train_pipeline))
# Ultralytics validates with twice the training batch.
val_dataloader = dict(batch_size=2 * train_batch_size, num_workers=4, **yolo_loader,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='YOLOOptimWrapper',
    constructor='YOLOOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=lr0, betas=(0.9, 0.999),
                   weight_decay=5e-4 * train_batch_size * accumulative_counts / nominal_batch_size),
    clip_grad=dict(max_norm=10.0),
    accumulative_counts=accumulative_counts)
param_scheduler = None  # YOLOParamSchedulerHook sets lr per iteration, as Ultralytics' trainer

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # No save_best: val here is the test split (monitoring only), see the dataset base.
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
custom_hooks = [
    dict(type='YOLOParamSchedulerHook', lrf=0.01, cos_lr=False, warmup_epochs=3.0,
         warmup_momentum=0.8, warmup_bias_lr=0.0),
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
