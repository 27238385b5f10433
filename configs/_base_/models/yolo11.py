# YOLO11 through the mmengine Runner (spinexr.models.detectors.YOLO11Detector).
# The scale comes from the Ultralytics model YAML name: yolo11{n,s,m,l,x}.yaml.
model = dict(
    type='YOLO11Detector',
    model_yaml='yolo11l.yaml',
    num_classes=7,
    # Ultralytics' hyper-parameters box / cls / dfl.
    loss_gains=dict(box=7.5, cls=0.5, dfl=1.5),
    # dict(type='bce') = Ultralytics' BCE; dict(type='focal', gamma=2.0, alpha=0.25) = focal.
    cls_loss=dict(type='bce'),
    tal_topk=10,
    # Loss x batch size x world size, as Ultralytics, and the gradients of an accumulation window
    # summed: with mmengine's OptimWrapper, which divides the loss by accumulative_counts,
    # SpinexrRunner multiplies it back (the model's accumulation_gain, derived from the built
    # wrapper at run time, --cfg-options included); YOLOOptimWrapper sums them itself.
    ultralytics_loss_scale=True,
    loss_gain=1.0,  # an extra constant on top of that; 1 = none
    # Ultralytics' validator: conf 0.001, multi-label NMS, 300 detections; IoU 0.65 (the recipe).
    test_cfg=dict(conf_thr=0.001, iou_thr=0.65, max_det=300, multi_label=True, agnostic=False),
    # A local Ultralytics .pt (e.g. 'yolo11l.pt'); None = train from scratch. Nothing downloads.
    pretrained=None,
    data_preprocessor=dict(
        type='YOLODetDataPreprocessor',
        pad_size_divisor=32,
        pad_value=114,
        bgr_to_rgb=True,
        batch_augments=None))
