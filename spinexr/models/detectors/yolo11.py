"""YOLO11 as an mmdet detector: Ultralytics' model, loss and NMS behind mmengine's Runner."""
import copy
import math
from typing import Any, Dict, List, Optional

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.dist import get_world_size
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor

from spinexr.models.detectors.yolo11_loss import (LOSS_NAMES, build_yolo_criterion,
                                                  pack_yolo_targets, unpack_yolo_loss)


@MODELS.register_module()
class YOLO11Detector(BaseDetector):
    """Ultralytics YOLO11 wrapped as an mmdet detector.

    The network is an ``ultralytics.nn.tasks.DetectionModel`` built from an Ultralytics model YAML
    (``'yolo11n.yaml'`` ... ``'yolo11x.yaml'``: Ultralytics reads the scale n/s/m/l/x from the
    name), held as ``self.yolo`` (state-dict keys ``yolo.model.<i>...``). Training computes
    Ultralytics' own
    ``v8DetectionLoss``; prediction decodes with the Detect head and filters with Ultralytics'
    ``non_max_suppression`` (without its time limit, so every image keeps its boxes), then maps
    boxes back to the original image.

    Loss scale: Ultralytics multiplies the per-image loss by the batch size and, under DDP, by the
    world size, and accumulates gradients without averaging. With ``ultralytics_loss_scale=True``
    the adapter returns the same magnitude (per-image mean x batch size x world size x
    ``loss_gain``); set ``loss_gain`` to ``accumulative_counts`` of the optimizer wrapper to undo
    mmengine's division of the loss during gradient accumulation, so lr 0.01 means what it means in
    Ultralytics (the gradient clipping at 10 too).

    Args:
        model_yaml (str): Ultralytics model YAML, e.g. ``'yolo11l.yaml'``.
        num_classes (int): Number of classes (``nc``).
        loss_gains (dict): ``box``, ``cls``, ``dfl`` gains. Defaults to 7.5 / 0.5 / 1.5.
        cls_loss (dict, optional): ``dict(type='bce')`` (default) or
            ``dict(type='focal', gamma=2.0, alpha=0.25)``.
        tal_topk (int): Top-k of the task-aligned assigner. Defaults to 10.
        ultralytics_loss_scale (bool): Scale losses as Ultralytics does (see above).
            Defaults to True.
        loss_gain (float): Extra constant multiplier of all losses. Defaults to 1.0.
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
        if data_preprocessor is None:
            data_preprocessor = dict(type='YOLODetDataPreprocessor')
        if isinstance(data_preprocessor, dict):  # resolve in mmdet's registry whatever the scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # lazy: importing ultralytics sets environment variables and thread counts
        from ultralytics.nn.tasks import DetectionModel

        self.yolo = DetectionModel(model_yaml, ch=3, nc=num_classes, verbose=False)
        self.model_yaml = model_yaml
        self.num_classes = num_classes
        self.loss_gains = {**dict(box=7.5, cls=0.5, dfl=1.5), **(loss_gains or {})}
        self.cls_loss = copy.deepcopy(dict(cls_loss)) if cls_loss else dict(type='bce')
        self.tal_topk = tal_topk
        self.ultralytics_loss_scale = ultralytics_loss_scale
        self.loss_gain = float(loss_gain)
        self.test_cfg = {
            **dict(conf_thr=0.001, iou_thr=0.65, max_det=300, multi_label=False, agnostic=False),
            **(test_cfg or {})
        }
        unknown = set(self.test_cfg) - {'conf_thr', 'iou_thr', 'max_det', 'multi_label', 'agnostic'}
        if unknown:
            raise ValueError(f'unknown test_cfg keys {sorted(unknown)} for YOLO11Detector')
        unknown = set(self.loss_gains) - {'box', 'cls', 'dfl'}
        if unknown:
            raise ValueError(f'unknown loss_gains keys {sorted(unknown)} (box, cls, dfl)')
        self.pretrained = pretrained
        self.trust_checkpoint = bool(trust_checkpoint)
        self.channels_last = channels_last
        self._criterion = None  # built lazily on the model's device, not a sub-module
        self._criterion_device = None

    # ------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """Run mmengine's initialisation, then transfer ``pretrained`` Ultralytics weights."""
        super().init_weights()
        if self.pretrained:
            self.load_ultralytics_weights(self.pretrained)

    def load_ultralytics_weights(self, path: str, trust_checkpoint: Optional[bool] = None) -> int:
        """Transfer matching tensors from a local Ultralytics ``.pt``.

        The file is read with :func:`spinexr.engine.checkpoint.load_ultralytics_checkpoint`:
        without running code from it (module classes restored from their attributes, tensors,
        containers; anything else is refused), or, when trusted, in full with Ultralytics'
        ``torch_safe_load``. The EMA model is preferred
        over the raw one, and tensors are transferred where name and shape match
        (``intersect_dicts``), as Ultralytics does when it starts from a ``.pt``. The architecture
        stays the one of ``model_yaml`` / ``num_classes``, so checkpoints stay loadable by a model
        built from the same config. (Ultralytics 8.4 also rebuilds the classification branch at
        the source's hidden width when ``nc`` differs; that changes the architecture only where
        the P3 width is below the source's ``nc``, e.g. YOLO11-n from 80 COCO classes, whose
        branch is then re-initialised here instead.)

        Args:
            path (str): Path of the ``.pt`` file.
            trust_checkpoint (bool, optional): Unpickle the file in full (see the class
                argument). ``None``: the model's ``trust_checkpoint``.

        Returns:
            int: Number of tensors of ``self.yolo`` that were transferred.

        Raises:
            pickle.UnpicklingError: The file holds objects outside the allow-list and is not
                trusted (the message says how to opt in).
        """
        import os

        from ultralytics.utils.torch_utils import intersect_dicts

        from spinexr.engine.checkpoint import load_ultralytics_checkpoint
        if not os.path.isfile(path):
            raise FileNotFoundError(f'Ultralytics weights not found: {path} '
                                    '(nothing is downloaded; pass a local .pt file)')
        if trust_checkpoint is None:
            trust_checkpoint = self.trust_checkpoint
        ckpt = load_ultralytics_checkpoint(path, trust_checkpoint=trust_checkpoint)
        source = (ckpt.get('ema') or ckpt.get('model')) if isinstance(ckpt, dict) else None
        if not isinstance(source, torch.nn.Module):
            raise TypeError(f'{path} is not an Ultralytics checkpoint (no pickled model under '
                            "'ema' or 'model'); for a spinexr checkpoint use load_from")
        csd = intersect_dicts(source.float().state_dict(), self.yolo.state_dict())
        self.yolo.load_state_dict(csd, strict=False)
        self._criterion = None
        print_log(f'Transferred {len(csd)}/{len(self.yolo.state_dict())} tensors from {path}',
                  logger='current')
        return len(csd)

    # ------------------------------------------------------------------ helpers
    def to(self, *args, **kwargs) -> 'YOLO11Detector':
        """Move/cast the model; switch the network to channels-last on CUDA (see
        ``channels_last``). Done here, before any DDP wrapping, as Ultralytics does."""
        module = super().to(*args, **kwargs)
        self._apply_memory_format()
        return module

    def cuda(self, *args, **kwargs) -> 'YOLO11Detector':
        """Move the model to CUDA (channels-last by default there)."""
        module = super().cuda(*args, **kwargs)
        self._apply_memory_format()
        return module

    def _apply_memory_format(self) -> None:
        on_cuda = next(self.yolo.parameters()).is_cuda
        if self.channels_last or (self.channels_last is None and on_cuda):
            self.yolo.to(memory_format=torch.channels_last)

    def prepare_for_inference(self, half: bool = False, fuse: bool = True,
                              channels_last: Optional[bool] = None) -> 'YOLO11Detector':
        """Put the model in its inference form, as Ultralytics' predictor does (call it after
        moving the model to its device; it stays an mmdet detector).

        Eval mode; Conv+BN fused (``fuse``); in-place activations; the network and its inputs in
        channels-last memory (``channels_last``); weights in float16 (``half``). Fusing changes
        the parameters: do not train the model afterwards.

        Args:
            half (bool): Cast the weights to float16 (inputs follow: ``InferencePrecision``).
                Box post-processing stays float32 (:meth:`postprocess`).
            fuse (bool): Fuse Conv+BN of the network. Defaults to True.
            channels_last (bool, optional): Channels-last network and inputs. None: on CUDA, and
                on x86 CPUs with oneDNN (where Ultralytics' predictor uses it too; about 1.3x
                faster there), else off.

        Returns:
            YOLO11Detector: ``self``.
        """
        self.eval()
        if fuse:
            self.yolo.fuse(verbose=False)
        for m in self.yolo.modules():  # as Ultralytics' loader sets for inference
            if hasattr(m, 'inplace'):
                m.inplace = True
        param = next(self.yolo.parameters())
        if channels_last is None:
            import platform
            channels_last = param.is_cuda or (
                param.device.type == 'cpu' and platform.machine() in ('x86_64', 'AMD64')
                and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.yolo.to(memory_format=torch.channels_last)
        if half:
            self.half()
        return self

    def _prepare_inputs(self, batch_inputs: Tensor) -> Tensor:
        if self.channels_last or (self.channels_last is None and batch_inputs.is_cuda):
            return batch_inputs.contiguous(memory_format=torch.channels_last)
        return batch_inputs

    def _get_criterion(self):
        device = next(self.yolo.parameters()).device
        if self._criterion is None or self._criterion_device != device:
            self._criterion = build_yolo_criterion(
                self.yolo, cls_loss=self.cls_loss, tal_topk=self.tal_topk, **self.loss_gains)
            self._criterion_device = device
        return self._criterion

    def extract_feat(self, batch_inputs: Tensor) -> List[Tensor]:
        """Return the three feature maps the Detect head reads (P3, P4, P5)."""
        y: List[Any] = []
        x = batch_inputs
        head = self.yolo.model[-1]
        for m in self.yolo.model[:-1]:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.yolo.save else None)
        return [y[j] for j in head.f]

    def _forward(self, batch_inputs: Tensor, batch_data_samples: OptConfigType = None) -> Any:
        """Raw network output: Ultralytics' dict of ``boxes``/``scores``/``feats`` in training
        mode; ``(decoded (N, 4 + nc, A), dict)`` in eval mode."""
        return self.yolo(batch_inputs)

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
            scale *= num_imgs * get_world_size()
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

    @staticmethod
    def to_original(bboxes: Tensor, metainfo: Dict[str, Any]) -> Tensor:
        """Undo the letterbox: subtract the left/top padding, divide by the resize factors, clip.

        Args:
            bboxes (Tensor): (N, 4) xyxy in batch-tensor pixels.
            metainfo (dict): ``scale_factor`` (w, h) from the Resize transform, optional
                ``pad_param`` ([top, bottom, left, right]) from a centred letterbox, ``ori_shape``.

        Returns:
            Tensor: (N, 4) xyxy in original-image pixels.
        """
        bboxes = bboxes.clone()
        pad = metainfo.get('pad_param')
        if pad is not None:
            bboxes[:, 0::2] -= float(pad[2])
            bboxes[:, 1::2] -= float(pad[0])
        scale = metainfo.get('scale_factor')
        if scale is not None:
            bboxes[:, 0::2] /= float(scale[0])
            bboxes[:, 1::2] /= float(scale[1])
        ori_shape = metainfo.get('ori_shape')
        if ori_shape is not None:
            bboxes[:, 0::2] = bboxes[:, 0::2].clamp(0, ori_shape[1])
            bboxes[:, 1::2] = bboxes[:, 1::2].clamp(0, ori_shape[0])
        return bboxes
