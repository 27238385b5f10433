"""YOLO11 as an mmdet detector: Ultralytics' model, loss and NMS behind mmengine's Runner."""
import copy
import math
from typing import Dict, Optional

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.dist import get_world_size
from mmengine.structures import InstanceData
from torch import Tensor, nn

from spinexr.models.detectors.ultralytics_base import UltralyticsDetector
from spinexr.models.detectors.yolo11_loss import (LOSS_NAMES, build_yolo_criterion,
                                                  pack_yolo_targets, unpack_yolo_loss)


@MODELS.register_module()
class YOLO11Detector(UltralyticsDetector):
    """Ultralytics YOLO11 wrapped as an mmdet detector.

    The network is an ``ultralytics.nn.tasks.DetectionModel`` built from an Ultralytics model YAML
    (``'yolo11n.yaml'`` ... ``'yolo11x.yaml'``: Ultralytics reads the scale n/s/m/l/x from the
    name), held as ``self.yolo`` (state-dict keys ``yolo.model.<i>...``). Training computes
    Ultralytics' own
    ``v8DetectionLoss``; prediction decodes with the Detect head and filters with Ultralytics'
    ``non_max_suppression`` (without its time limit, so every image keeps its boxes), then maps
    boxes back to the original image. The raw forward (``mode='tensor'``) returns Ultralytics'
    dict of ``boxes``/``scores``/``feats`` in training mode, ``(decoded (N, 4 + nc, A), dict)``
    in eval mode. Weight transfer, inference preparation, feature extraction, memory format and
    box mapping are :class:`~spinexr.models.detectors.ultralytics_base.UltralyticsDetector`'s,
    shared with the RT-DETR adapter.

    Loss scale: Ultralytics multiplies the per-image loss by the batch size and, under DDP, by the
    world size, and accumulates gradients without averaging. With ``ultralytics_loss_scale=True``
    the adapter returns the same magnitude (per-image mean x batch size x world size x
    ``accumulation_gain`` x ``loss_gain``), so lr 0.01 means what it means in Ultralytics (the
    gradient clipping at 10 too). ``accumulation_gain`` undoes the optimizer wrapper's division of
    the loss during gradient accumulation; it is not a config argument but derived at run time:
    :class:`~spinexr.engine.SpinexrRunner` sets it from the wrapper it builds
    (``accumulative_counts`` for mmengine's ``OptimWrapper``, 1 for ``YOLOOptimWrapper``, which
    sums the gradients itself), so it follows ``--cfg-options optim_wrapper...`` too.

    Args:
        model_yaml (str): Ultralytics model YAML, e.g. ``'yolo11l.yaml'``.
        num_classes (int): Number of classes (``nc``).
        loss_gains (dict): ``box``, ``cls``, ``dfl`` gains. Defaults to 7.5 / 0.5 / 1.5.
        cls_loss (dict, optional): ``dict(type='bce')`` (default) or
            ``dict(type='focal', gamma=2.0, alpha=0.25)``.
        tal_topk (int): Top-k of the task-aligned assigner. Defaults to 10.
        ultralytics_loss_scale (bool): Scale losses as Ultralytics does (see above).
            Defaults to True.
        loss_gain (float): Extra constant multiplier of all losses, on top of the derived
            ``accumulation_gain``. Defaults to 1.0 (none).
        test_cfg (dict, optional): ``conf_thr`` (0.001), ``iou_thr`` (0.65), ``max_det`` (300),
            ``multi_label`` (False), ``agnostic`` (False).
        pretrained (str, optional): Local Ultralytics ``.pt`` (e.g. ``yolo11l.pt``); tensors
            matching by name and shape are transferred when :meth:`init_weights` runs (nc may
            differ), see :meth:`load_ultralytics_weights`. Nothing is downloaded.
        trust_checkpoint (bool): Unpickle ``pretrained`` in full with Ultralytics' loader (runs
            any code the file holds; ``--trust-checkpoint`` sets it). Defaults to False: the file
            is read with an allow-list (:func:`spinexr.engine.checkpoint.
            load_ultralytics_checkpoint`) and refused if it holds anything else.
        channels_last (bool, optional): Run the network in channels-last (NHWC) memory format, as
            Ultralytics' trainer does on CUDA (faster on Tensor Cores). ``None`` (default): on
            when the model is moved to a CUDA device, off on CPU.
        data_preprocessor (dict, optional): Defaults to ``YOLODetDataPreprocessor``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 model_yaml: str = 'yolo11n.yaml',
                 num_classes: int = 80,
                 loss_gains: Optional[Dict[str, float]] = None,
                 cls_loss: OptConfigType = None,
                 tal_topk: int = 10,
                 ultralytics_loss_scale: bool = True,
                 loss_gain: float = 1.0,
                 test_cfg: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 trust_checkpoint: bool = False,
                 channels_last: Optional[bool] = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            model_yaml=model_yaml,
            num_classes=num_classes,
            ultralytics_loss_scale=ultralytics_loss_scale,
            loss_gain=loss_gain,
            pretrained=pretrained,
            trust_checkpoint=trust_checkpoint,
            channels_last=channels_last,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.loss_gains = self._with_defaults('loss_gains', dict(box=7.5, cls=0.5, dfl=1.5),
                                              loss_gains, 'YOLO11Detector')
        self.cls_loss = copy.deepcopy(dict(cls_loss)) if cls_loss else dict(type='bce')
        self.tal_topk = tal_topk
        self.test_cfg = self._with_defaults(
            'test_cfg', dict(conf_thr=0.001, iou_thr=0.65, max_det=300, multi_label=False,
                             agnostic=False), test_cfg, 'YOLO11Detector')
        self._criterion_device = None  # device of the lazily built criterion (``_criterion``)

    def _build_network(self, model_yaml: str, num_classes: int) -> nn.Module:
        """Build Ultralytics' ``DetectionModel`` (scale n/s/m/l/x read from the YAML name).

        Args:
            model_yaml (str): Ultralytics model YAML, e.g. ``'yolo11l.yaml'``.
            num_classes (int): Number of classes.

        Returns:
            nn.Module: The ``DetectionModel``.
        """
        # lazy: importing ultralytics sets environment variables and thread counts
        from ultralytics.nn.tasks import DetectionModel
        return DetectionModel(model_yaml, ch=3, nc=num_classes, verbose=False)

    def _get_criterion(self):
        """Ultralytics' ``v8DetectionLoss`` for the network, (re)built on the model's device."""
        device = next(self.yolo.parameters()).device
        if self._criterion is None or self._criterion_device != device:
            self._criterion = build_yolo_criterion(
                self.yolo, cls_loss=self.cls_loss, tal_topk=self.tal_topk, **self.loss_gains)
            self._criterion_device = device
        return self._criterion

    # ------------------------------------------------------------------ loss
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Ultralytics' detection loss on a batch.

        Args:
            batch_inputs (Tensor): N x 3 x H x W in [0, 1] (``YOLODetDataPreprocessor``).
            batch_data_samples (list[DetDataSample]): Samples with ``gt_instances``.

        Returns:
            dict[str, Tensor]: ``loss_box``, ``loss_cls``, ``loss_dfl``.
        """
        preds = self.yolo(self._prepare_inputs(batch_inputs))
        if isinstance(preds, tuple):  # eval-mode call (e.g. loss during validation)
            preds = preds[1]
        batch = pack_yolo_targets(batch_data_samples, tuple(batch_inputs.shape[-2:]),
                                  device=batch_inputs.device)
        criterion = self._get_criterion()
        num_imgs = batch_inputs.shape[0]
        per_image, _ = unpack_yolo_loss(criterion(preds, batch), num_imgs)
        scale = self.loss_gain
        if self.ultralytics_loss_scale:
            scale *= num_imgs * get_world_size() * self.accumulation_gain
        per_image = per_image * scale
        return {name: per_image[i] for i, name in enumerate(LOSS_NAMES)}

    # ------------------------------------------------------------------ predict
    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Predict with Ultralytics' decoding and NMS.

        Args:
            batch_inputs (Tensor): N x 3 x H x W in [0, 1].
            batch_data_samples (list[DetDataSample]): Samples with metainfo (``scale_factor``,
                ``ori_shape``, optional ``pad_param`` = [top, bottom, left, right] of a centred
                letterbox).
            rescale (bool): Map boxes to the original image. Defaults to True.

        Returns:
            list[DetDataSample]: Samples with ``pred_instances`` (``bboxes`` xyxy, ``scores``,
            ``labels``).
        """
        out = self.yolo(self._prepare_inputs(batch_inputs))
        decoded = out[0] if isinstance(out, tuple) else out
        if isinstance(decoded, dict):  # called in training mode: decode as the head does
            decoded = self.yolo.model[-1]._inference(decoded)
        return self.postprocess(decoded, batch_data_samples, rescale=rescale)

    def postprocess(self,
                    decoded: Tensor,
                    batch_data_samples: SampleList,
                    rescale: bool = True) -> SampleList:
        """NMS and box mapping of the Detect head's decoded output, always in float32.

        The network (and its decoding) may run in half precision; everything after it runs in
        float32, whatever the network's dtype: ``non_max_suppression`` separates classes by
        adding ``class x 7680`` px to the boxes, and in float16 the spacing of numbers near
        46,080 (class 6) is 32 px, so boxes of one class would be compared on a 32 px grid
        and wrongly suppressed. The cast is made here rather than left to the type promotion
        inside Ultralytics' NMS.

        Args:
            decoded (Tensor): (N, 4 + num_classes, A) xywh boxes and class scores in
                batch-tensor pixels, any floating dtype.
            batch_data_samples (list[DetDataSample]): As in :meth:`predict`.
            rescale (bool): Map boxes to the original image. Defaults to True.

        Returns:
            list[DetDataSample]: Samples with float32 ``pred_instances``.
        """
        from ultralytics.utils.nms import non_max_suppression

        decoded = decoded.float()  # explicit: NMS + box post-processing in float32
        cfg = self.test_cfg
        # max_time_img=inf: Ultralytics stops after 2 + max_time_img x batch seconds and returns
        # the rest of the batch with no boxes (only a log warning); no image may lose its
        # detections to a slow batch, so there is no time limit here.
        dets = non_max_suppression(
            decoded,
            conf_thres=cfg['conf_thr'],
            iou_thres=cfg['iou_thr'],
            multi_label=cfg['multi_label'],
            agnostic=cfg['agnostic'],
            max_det=cfg['max_det'],
            nc=self.num_classes,
            max_time_img=math.inf)
        results = []
        for det, sample in zip(dets, batch_data_samples):
            bboxes = det[:, :4]
            if rescale:
                bboxes = self.to_original(bboxes, sample.metainfo)
            inst = InstanceData()
            inst.bboxes = bboxes
            inst.scores = det[:, 4]
            inst.labels = det[:, 5].long()
            results.append(inst)
        return self.add_pred_to_datasample(batch_data_samples, results)
