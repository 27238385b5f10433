# RT-DETR through the mmengine Runner (spinexr.models.detectors.RTDETRDetector): Ultralytics'
# RTDETRDetectionModel, its own criterion (RTDETRDetectionLoss: VFL + L1 + GIoU, Hungarian
# matching, auxiliary/encoder/denoising terms) and its top-k decoding (no NMS).
model = dict(
    type='RTDETRDetector',
    model_yaml='rtdetr-l.yaml',  # Ultralytics ships the 'l' scale (and rtdetr-x / resnet variants)
    num_classes=7,
    # The model's loss x world size, as Ultralytics' RT-DETR trainer (NOT x batch size as YOLO's).
    # The runner undoes an optimizer wrapper's division during accumulation by itself
    # (accumulation_gain, set from the built wrapper); loss_gain is an extra constant.
    ultralytics_loss_scale=True,
    loss_gain=1.0,
    # Ultralytics' validator: conf 0.001, at most 300 detections (the head's top-300).
    test_cfg=dict(conf_thr=0.001, max_det=300),
    # A local Ultralytics .pt (e.g. 'rtdetr-l.pt'); None = train from scratch. Nothing downloads.
    pretrained=None,
    data_preprocessor=dict(
        type='YOLODetDataPreprocessor',
        pad_size_divisor=32,
        pad_value=114,
        bgr_to_rgb=True,
        batch_augments=None))
