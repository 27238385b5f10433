"""One decision of device and precision for every model of an inference run.

``tools/infer.py`` runs a detector and, for decision fusion, an optional image classifier. Both run
on the same device in the same precision, decided once, from the detector as it was built
(:func:`spinexr.apis.inference.build_detector`):

- the detector's weights are float32 and no reduced precision is asked for: both models in float32;
- the detector's weights are in a reduced dtype (a YOLO11 network ``.half()``-ed for ``--fp16`` on
  CUDA, as Ultralytics' ``half=True``): the classifier's weights are cast to that dtype too, and
  both models' inputs are cast to it after their data preprocessors;
- float32 weights with ``fp16`` on CUDA (any other mmdet detector): both models run under
  ``torch.autocast(dtype=float16)``.

Box post-processing (NMS) stays float32 in every case (``YOLO11Detector.postprocess``).
"""
import contextlib
from dataclasses import dataclass
from typing import ContextManager, Optional

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class InferencePrecision:
    """Device and compute dtype shared by the detector and the classifier.

    Args:
        device (torch.device): Where both models and their inputs live.
        dtype (torch.dtype): Compute dtype (``torch.float32``, ``float16`` or ``bfloat16``).
        cast_weights (bool): True: weights and inputs are in ``dtype``; False: float32 weights
            under ``torch.autocast`` to ``dtype`` (only when ``dtype`` is reduced).
    """

    device: torch.device
    dtype: torch.dtype = torch.float32
    cast_weights: bool = False

    @classmethod
    def of_detector(cls, detector: nn.Module, fp16: bool = False) -> 'InferencePrecision':
        """The precision the detector was built in.

        Args:
            detector (nn.Module): A built detector (eval mode, on its device).
            fp16 (bool): Reduced precision was asked for (``--fp16``); with float32 weights it
                means autocast to float16, on CUDA only (as :func:`build_detector` documents).

        Returns:
            InferencePrecision: Device and dtype of the detector's floating-point weights.
        """
        param = next((p for p in detector.parameters() if p.is_floating_point()), None)
        if param is None:
            raise ValueError(f'{type(detector).__name__} has no floating-point parameters to '
                             'take the inference device and precision from')
        if param.dtype != torch.float32:
            return cls(param.device, param.dtype, cast_weights=True)
        if fp16 and param.device.type == 'cuda':
            return cls(param.device, torch.float16, cast_weights=False)
        return cls(param.device)

    @property
    def reduced(self) -> bool:
        """Whether the models compute in less than float32."""
        return self.dtype != torch.float32

    def apply(self, model: Optional[nn.Module]) -> Optional[nn.Module]:
        """Move ``model`` to the device and, with ``cast_weights``, cast its weights to the dtype.

        Args:
            model (nn.Module, optional): E.g. the classifier from :func:`build_classifier`.

        Returns:
            nn.Module, optional: The same module (``nn.Module.to`` works in place).
        """
        if model is None:
            return None
        model.to(self.device)
        if self.cast_weights:
            model.to(self.dtype)
        return model

    def inputs(self, x: Tensor) -> Tensor:
        """A preprocessed batch in the dtype the weights expect (unchanged under autocast)."""
        return x.to(self.dtype) if self.cast_weights else x

    def autocast(self) -> ContextManager:
        """``torch.autocast`` to the dtype for float32 weights in reduced precision, else a no-op."""
        if self.reduced and not self.cast_weights:
            return torch.autocast(device_type=self.device.type, dtype=self.dtype)
        return contextlib.nullcontext()
