"""The shared part of spinexr's Ultralytics adapters: an Ultralytics network as an mmdet detector."""
import os
import platform
from abc import abstractmethod
from typing import Any, Dict, List, Optional, Union

import torch
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.logging import print_log
from torch import Tensor, nn


class UltralyticsDetector(BaseDetector):
    """Base of the detectors that hold an Ultralytics network (YOLO11, RT-DETR).

    Not registered and abstract: a subclass builds the network (:meth:`_build_network`) and
    implements ``loss`` and ``predict``. The network is held as ``self.yolo`` for every subclass
    (state-dict keys ``yolo.model.<i>...``), so a checkpoint is a plain mmengine one. Shared here:
    construction of the data preprocessor, transfer of weights from a local Ultralytics ``.pt``
    (:meth:`load_ultralytics_weights`, with its explicit opt-in to full unpickling), the
    channels-last memory format on CUDA, the inference form of the network
    (:meth:`prepare_for_inference`), feature extraction, the raw forward and the mapping of boxes
    back to the original image (:meth:`to_original`).

    Args:
        model_yaml (str | dict): Ultralytics model YAML (name, file path or the YAML as a dict);
            what a subclass accepts is its own.
        num_classes (int): Number of classes (``nc``).
        ultralytics_loss_scale (bool): Scale the loss as Ultralytics does (see the subclass).
        loss_gain (float): Extra constant multiplier of the loss.
        pretrained (str, optional): Local Ultralytics ``.pt`` whose tensors matching by name and
            shape are transferred when :meth:`init_weights` runs. Nothing is downloaded.
        trust_checkpoint (bool): Unpickle ``pretrained`` in full with Ultralytics' loader (runs
            any code the file holds; ``--trust-checkpoint`` sets it). False: the file is read
            with an allow-list (:func:`spinexr.engine.checkpoint.load_ultralytics_checkpoint`)
            and refused if it holds anything else.
        channels_last (bool, optional): Run the network in channels-last (NHWC) memory format,
            as Ultralytics' trainer does on CUDA. ``None``: on when the model is moved to a CUDA
            device, off on CPU.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            ``YOLODetDataPreprocessor``; a dict is built in mmdet's ``MODELS``.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 model_yaml: Union[str, dict],
                 num_classes: int,
                 ultralytics_loss_scale: bool = True,
                 loss_gain: float = 1.0,
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
        self.yolo = self._build_network(model_yaml, num_classes)
        self.model_yaml = model_yaml
        self.num_classes = num_classes
        self.ultralytics_loss_scale = bool(ultralytics_loss_scale)
        self.loss_gain = float(loss_gain)
        #: Factor by which the optimizer wrapper divides the loss while accumulating gradients,
        #: multiplied back in with ``ultralytics_loss_scale``; set by ``SpinexrRunner`` when it
        #: builds the wrapper (1.0 until then, and outside a runner).
        self.accumulation_gain = 1.0
        self.pretrained = pretrained
        self.trust_checkpoint = bool(trust_checkpoint)
        self.channels_last = channels_last
        #: A subclass's lazily built criterion (not a sub-module); dropped when weights change.
        self._criterion = None

    @staticmethod
    def _with_defaults(what: str, defaults: Dict[str, Any], given: Optional[dict],
                       owner: str) -> Dict[str, Any]:
        """``defaults`` updated by ``given``, refusing keys that ``defaults`` does not have.

        Args:
            what (str): The argument's name, for the error (e.g. ``'test_cfg'``).
            defaults (dict): Every allowed key with its default.
            given (dict, optional): The user's values.
            owner (str): Who refuses, for the error (e.g. ``'YOLO11Detector'``).

        Returns:
            dict: The merged settings.

        Raises:
            ValueError: For a key not in ``defaults`` (the message lists the allowed ones).
        """
        merged = {**defaults, **(given or {})}
        unknown = set(merged) - set(defaults)
        if unknown:
            raise ValueError(f'unknown {what} keys {sorted(unknown)} for {owner} '
                             f'(allowed: {", ".join(defaults)})')
        return merged

    @abstractmethod
    def _build_network(self, model_yaml: Union[str, dict], num_classes: int) -> nn.Module:
        """Build the Ultralytics network held as ``self.yolo``.

        Args:
            model_yaml (str | dict): The ``model_yaml`` argument.
            num_classes (int): Number of classes.

        Returns:
            nn.Module: An ``ultralytics.nn.tasks`` model (``.model`` the layer list).
        """

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
            FileNotFoundError: ``path`` is not a file.
            TypeError: The file holds no pickled model under ``'ema'`` or ``'model'``.
            pickle.UnpicklingError: The file holds objects outside the allow-list and is not
                trusted (the message says how to opt in).
        """
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

    # ------------------------------------------------------------------ device and layout
    def to(self, *args, **kwargs) -> 'UltralyticsDetector':
        """Move/cast the model; switch the network to channels-last on CUDA (see
        ``channels_last``). Done here, before any DDP wrapping, as Ultralytics does."""
        module = super().to(*args, **kwargs)
        self._apply_memory_format()
        return module

    def cuda(self, *args, **kwargs) -> 'UltralyticsDetector':
        """Move the model to CUDA (channels-last by default there)."""
        module = super().cuda(*args, **kwargs)
        self._apply_memory_format()
        return module

    def _apply_memory_format(self) -> None:
        """Put the network in channels-last memory if ``channels_last`` (``None``: on CUDA)."""
        on_cuda = next(self.yolo.parameters()).is_cuda
        if self.channels_last or (self.channels_last is None and on_cuda):
            self.yolo.to(memory_format=torch.channels_last)

    def _prepare_inputs(self, batch_inputs: Tensor) -> Tensor:
        """Return the batch in the network's memory format (channels-last where it is)."""
        if self.channels_last or (self.channels_last is None and batch_inputs.is_cuda):
            return batch_inputs.contiguous(memory_format=torch.channels_last)
        return batch_inputs

    def prepare_for_inference(self, half: bool = False, fuse: bool = True,
                              channels_last: Optional[bool] = None) -> 'UltralyticsDetector':
        """Put the model in its inference form, as Ultralytics' predictor does (call it after
        moving the model to its device; it stays an mmdet detector).

        Eval mode; Conv+BN (and RepConv) fused (``fuse``); in-place activations; the network and
        its inputs in channels-last memory (``channels_last``); weights in float16 (``half``).
        Fusing changes the parameters: do not train the model afterwards.

        Args:
            half (bool): Cast the weights to float16 (inputs follow: ``InferencePrecision``).
                Box post-processing stays float32 (the subclass's ``postprocess``).
            fuse (bool): Fuse Conv+BN of the network. Defaults to True.
            channels_last (bool, optional): Channels-last network and inputs. None: on CUDA, and
                on x86 CPUs with oneDNN (where Ultralytics' predictor uses it too; about 1.3x
                faster there), else off.

        Returns:
            UltralyticsDetector: ``self``.
        """
        self.eval()
        if fuse:
            self.yolo.fuse(verbose=False)
        for m in self.yolo.modules():  # as Ultralytics' loader sets for inference
            if hasattr(m, 'inplace'):
                m.inplace = True
        param = next(self.yolo.parameters())
        if channels_last is None:
            channels_last = param.is_cuda or (
                param.device.type == 'cpu' and platform.machine() in ('x86_64', 'AMD64')
                and torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled)
        self.channels_last = bool(channels_last)
        if self.channels_last:
            self.yolo.to(memory_format=torch.channels_last)
        if half:
            self.half()
        return self

    # ------------------------------------------------------------------ forward
    def extract_feat(self, batch_inputs: Tensor) -> List[Tensor]:
        """Return the feature maps the head reads (its inputs ``head.f``: P3, P4, P5).

        Args:
            batch_inputs (Tensor): N x 3 x H x W.

        Returns:
            list[Tensor]: One feature map per input of the last layer, in its order.
        """
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
        """Raw network output, as Ultralytics' model returns it in its current mode (the
        subclass's class docstring says what it holds)."""
        return self.yolo(batch_inputs)

    # ------------------------------------------------------------------ boxes
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
