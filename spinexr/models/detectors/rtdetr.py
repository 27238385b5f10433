"""RT-DETR as an mmdet detector: Ultralytics' model, loss and top-k decoding behind mmengine."""
from typing import Dict, Optional, Union

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.dist import get_world_size
from mmengine.structures import InstanceData
from torch import Tensor, nn

from spinexr.models.detectors.ultralytics_base import UltralyticsDetector
from spinexr.models.detectors.yolo11_loss import pack_yolo_targets

#: Logged names of the detached components Ultralytics reports (``giou_loss``, ``cls_loss``,
#: ``l1_loss`` there), without ``'loss'`` in them: mmengine sums every key holding ``'loss'``.
COMPONENT_NAMES = {'giou_loss': 'giou', 'cls_loss': 'cls', 'l1_loss': 'l1'}


@MODELS.register_module()
class RTDETRDetector(UltralyticsDetector):
    """Ultralytics RT-DETR wrapped as an mmdet detector.

    The network is an ``ultralytics.nn.tasks.RTDETRDetectionModel`` built from an Ultralytics model
    YAML (``'rtdetr-l.yaml'``, or a path / dict of one), held as ``self.yolo`` (state-dict keys
    ``yolo.model.<i>...``). Weight loading, inference preparation, feature extraction, memory
    format and box mapping are those of the base class,
    :class:`~spinexr.models.detectors.ultralytics_base.UltralyticsDetector`, shared with
    :class:`~spinexr.models.detectors.yolo11.YOLO11Detector`. The raw forward
    (``mode='tensor'``) returns the decoder's tuple in training mode, ``(top-k (N, K, 6), tuple)``
    in eval mode.

    Training calls the model's own ``loss(batch)``: the decoder runs with Ultralytics' contrastive
    denoising queries built from the targets, and ``RTDETRDetectionLoss`` (VFL classification, L1
    and GIoU, Hungarian matching, auxiliary decoder layers, encoder top-k and denoising groups)
    returns its terms, summed. The ground truth is packed by :func:`pack_yolo_targets` (xywh
    normalised by the batch tensor, which is what the decoder's normalised boxes refer to).

    Loss scale: Ultralytics' RT-DETR trainer backpropagates ``loss.sum()`` as the model returns
    it (already normalised by the number of boxes: unlike YOLO's, it is NOT multiplied by the
    batch size), times the world size under DDP, and sums the gradients of accumulated batches.
    With ``ultralytics_loss_scale=True`` the adapter multiplies by the world size too, and by
    ``accumulation_gain``, which is not a config argument: :class:`~spinexr.engine.SpinexrRunner`
    sets it from the optimizer wrapper it builds (1 for ``YOLOOptimWrapper``, which sums the
    accumulated gradients as Ultralytics; ``accumulative_counts`` for mmengine's ``OptimWrapper``,
    undoing its division), as for the YOLO11 detector. ``loss_gain`` is an extra constant.

    Prediction follows Ultralytics' ``RTDETRValidator.postprocess``: the head's top-k over
    queries x classes (sorted scores, several labels per query possible, no NMS), scores above
    ``conf_thr``, the first ``max_det``; normalised xywh to xyxy pixels of the batch tensor, then
    to the original image (:meth:`to_original`), all in float32.

    Args:
        model_yaml (str | dict): Ultralytics RT-DETR model YAML, e.g. ``'rtdetr-l.yaml'`` (or a
            file path, or the YAML as a dict).
        num_classes (int): Number of classes (``nc``).
        ultralytics_loss_scale (bool): Multiply the loss by the world size, as Ultralytics does.
            Defaults to True.
        loss_gain (float): Extra constant multiplier of the loss. Defaults to 1.0.
        test_cfg (dict, optional): ``conf_thr`` (0.001, Ultralytics' validation default) and
            ``max_det`` (300).
        pretrained (str, optional): Local Ultralytics ``.pt`` (e.g. ``rtdetr-l.pt``); tensors
            matching by name and shape are transferred in :meth:`init_weights`. Nothing is
            downloaded.
        trust_checkpoint (bool): Unpickle ``pretrained`` in full (runs any code it holds).
            Defaults to False: read with an allow-list, see
            :meth:`load_ultralytics_weights`.
        channels_last (bool, optional): Channels-last network; ``None`` (default): on CUDA only,
            as Ultralytics' trainer.
        data_preprocessor (dict, optional): Defaults to ``YOLODetDataPreprocessor``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 model_yaml: Union[str, dict] = 'rtdetr-l.yaml',
                 num_classes: int = 80,
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
        # RT-DETR has no NMS: no iou_thr / multi_label / agnostic
        self.test_cfg = self._with_defaults('test_cfg', dict(conf_thr=0.001, max_det=300),
                                            test_cfg, 'RTDETRDetector')

    def _build_network(self, model_yaml: Union[str, dict], num_classes: int) -> nn.Module:
        """Build Ultralytics' ``RTDETRDetectionModel`` with the attributes its trainer sets.

        Args:
            model_yaml (str | dict): RT-DETR model YAML (name, path, or a dict, copied here).
            num_classes (int): Number of classes.

        Returns:
            nn.Module: The ``RTDETRDetectionModel``, with ``nc`` and ``names`` set.
        """
        # lazy: importing ultralytics sets environment variables and thread counts
        from ultralytics.nn.tasks import RTDETRDetectionModel

        yaml_cfg = dict(model_yaml) if isinstance(model_yaml, dict) else model_yaml
        model = RTDETRDetectionModel(yaml_cfg, ch=3, nc=num_classes, verbose=False)
        # what Ultralytics' trainer sets (set_model_attributes): the criterion reads ``nc``
        model.nc = num_classes
        model.names = {i: str(i) for i in range(num_classes)}
        return model

    # ------------------------------------------------------------------ loss
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Ultralytics' RT-DETR loss on a batch.

        Args:
            batch_inputs (Tensor): N x 3 x H x W in [0, 1] (``YOLODetDataPreprocessor``).
            batch_data_samples (list[DetDataSample]): Samples with ``gt_instances``.

        Returns:
            dict[str, Tensor]: ``loss_rtdetr``, the sum of all terms of Ultralytics' criterion
            (scaled, see the class), and the detached ``giou`` / ``cls`` / ``l1`` of the last
            decoder layer, as Ultralytics reports them (logged only, not summed by mmengine).
        """
        batch = pack_yolo_targets(batch_data_samples, tuple(batch_inputs.shape[-2:]),
                                  device=batch_inputs.device)
        batch['img'] = self._prepare_inputs(batch_inputs)
        total, items = self.yolo.loss(batch)
        scale = self.loss_gain
        if self.ultralytics_loss_scale:
            scale *= get_world_size() * self.accumulation_gain
        losses = {'loss_rtdetr': total * scale}
        losses.update({COMPONENT_NAMES[k]: v for k, v in items.items()})
        return losses

    # ------------------------------------------------------------------ predict
    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Predict with the RT-DETR head's top-k decoding (no NMS).

        Args:
            batch_inputs (Tensor): N x 3 x H x W in [0, 1].
            batch_data_samples (list[DetDataSample]): Samples with metainfo (``scale_factor``,
                ``ori_shape``, optional ``pad_param``).
            rescale (bool): Map boxes to the original image. Defaults to True.

        Returns:
            list[DetDataSample]: Samples with ``pred_instances`` (``bboxes`` xyxy, ``scores``,
            ``labels``).
        """
        out = self.yolo(self._prepare_inputs(batch_inputs))
        if isinstance(out, tuple) and len(out) == 2:  # eval mode: (top-k, raw outputs)
            topk = out[0]
        else:  # training mode: raw decoder outputs of every layer; decode the last as eval does
            dec_bboxes, dec_scores = out[0], out[1]
            topk = self.yolo.model[-1].postprocess(dec_bboxes[-1], dec_scores[-1].sigmoid())
        return self.postprocess(topk, batch_data_samples, tuple(batch_inputs.shape[-2:]),
                                rescale=rescale)

    def postprocess(self,
                    topk: Tensor,
                    batch_data_samples: SampleList,
                    input_shape: tuple,
                    rescale: bool = True) -> SampleList:
        """Ultralytics' ``RTDETRValidator.postprocess``, in float32, then the box mapping.

        Args:
            topk (Tensor): (N, K, 6) ``[cx, cy, w, h, score, class]``, boxes normalised by the
                batch tensor, scores sorted in descending order per image (any float dtype).
            batch_data_samples (list[DetDataSample]): As in :meth:`predict`.
            input_shape (tuple[int, int]): ``(H, W)`` of the batch tensor.
            rescale (bool): Map boxes to the original image. Defaults to True.

        Returns:
            list[DetDataSample]: Samples with float32 ``pred_instances``.
        """
        from ultralytics.utils import ops

        topk = topk.float()  # explicit: decoding and box mapping in float32
        h, w = input_shape
        boxes = ops.xywh2xyxy(topk[..., :4]) * topk.new_tensor([w, h, w, h])
        scores, labels = topk[..., 4], topk[..., 5]
        results = []
        for bbox, score, label, sample in zip(boxes, scores, labels, batch_data_samples):
            keep = (score > self.test_cfg['conf_thr']).nonzero().squeeze(1)
            keep = keep[:self.test_cfg['max_det']]
            bbox = bbox[keep]
            if rescale:
                bbox = self.to_original(bbox, sample.metainfo)
            inst = InstanceData()
            inst.bboxes = bbox
            inst.scores = score[keep]
            inst.labels = label[keep].long()
            results.append(inst)
        return self.add_pred_to_datasample(batch_data_samples, results)
