"""Ultralytics' YOLO detection criterion, wrapped for the mmengine Runner.

The YOLO11 adapter (:class:`spinexr.models.detectors.YOLO11Detector`) computes exactly Ultralytics'
own ``v8DetectionLoss`` (task-aligned assigner, BCE classification, CIoU box and DFL losses). This
module holds what the adapter adds around it:

* :class:`SigmoidFocalBCE`, an element-wise sigmoid focal loss for soft targets (quality focal loss,
  minimum at the target) that replaces the criterion's BCE, so the classification loss keeps
  Ultralytics' normalisation by the sum of the target scores;
* :func:`pack_yolo_targets`, which turns mmdet ground truth into the criterion's batch format in
  one vectorised pass (on the host when the samples are there) and one copy to the device;
* :func:`build_yolo_criterion`, which builds the criterion of a ``DetectionModel`` with the
  gains of a config and optionally the focal classification loss;
* :func:`unpack_yolo_loss`, which reads the return value of the pinned Ultralytics version explicitly.

Ultralytics is imported lazily (inside functions) because importing it sets environment variables and
thread counts.
"""
from types import SimpleNamespace
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Names of the three components, in Ultralytics' order (box, cls, dfl).
LOSS_NAMES = ('loss_box', 'loss_cls', 'loss_dfl')


class SigmoidFocalBCE(nn.Module):
    """Sigmoid focal loss for soft targets (quality focal loss), element-wise (no reduction).

    ``loss = alpha_t * |t - p| ** gamma * BCE(x, t)`` with ``p = sigmoid(x)`` and
    ``alpha_t = alpha * t + (1 - alpha) * (1 - t)``: the quality focal loss of Li et al. (2020,
    Generalized Focal Loss) with the alpha balance of Lin et al. (2017). The task-aligned assigner
    gives IoU-aware targets ``t`` in [0, 1]; for every such ``t`` the loss, as a function of ``p``
    (or of the logit ``x``), is zero at ``p = t`` and positive elsewhere, so its minimum is at the
    target. (The plain focal factor ``(1 - p_t) ** gamma`` with ``p_t = p t + (1 - p)(1 - t)`` does
    not vanish at ``p = t`` and pulls the optimum away from soft targets: for ``t = 0.2`` to
    ``p = 0.047``.) On hard targets (``t`` in {0, 1}) ``|t - p| = 1 - p_t``, so this is exactly
    Lin et al.'s sigmoid focal loss.

    ``alpha`` weights the positive part: a negative (``t = 0``) gets ``1 - alpha``, a full positive
    (``t = 1``) ``alpha``, a soft target the linear mix. ``alpha_t`` does not depend on ``p``, so it
    does not move the minimum. Being element-wise, the loss drops into ``v8DetectionLoss.bce``; the
    criterion then sums it and divides by the target-score sum exactly as it does for its BCE.

    Args:
        gamma (float): Focusing exponent (>= 0; 0 with ``alpha < 0`` gives the plain BCE).
            Defaults to 2.0.
        alpha (float): Weight of the positive part, in [0, 1]; a negative value disables alpha
            weighting. Defaults to 0.25.
    """

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f'focal gamma must be >= 0, got {gamma}')
        if alpha > 1:
            raise ValueError(f'focal alpha must be in [0, 1] (or < 0 to disable), got {alpha}')
        self.gamma = float(gamma)
        self.alpha = float(alpha)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """Return the element-wise loss.

        Args:
            pred (Tensor): Logits of any shape.
            target (Tensor): Targets in [0, 1], same shape as ``pred``.

        Returns:
            Tensor: The loss, same shape as ``pred``.
        """
        target = target.to(pred.dtype)
        bce = F.binary_cross_entropy_with_logits(pred, target, reduction='none')
        loss = bce * (target - pred.sigmoid()).abs().pow(self.gamma)
        if self.alpha >= 0:
            loss = loss * (self.alpha * target + (1 - self.alpha) * (1 - target))
        return loss


def build_yolo_criterion(yolo_model: nn.Module,
                         box: float = 7.5,
                         cls: float = 0.5,
                         dfl: float = 1.5,
                         cls_loss: Optional[Dict[str, Any]] = None,
                         tal_topk: int = 10) -> Any:
    """Build Ultralytics' ``v8DetectionLoss`` for a ``DetectionModel``.

    Args:
        yolo_model (nn.Module): An ``ultralytics.nn.tasks.DetectionModel``. Its ``args`` attribute is
            set to a namespace holding the gains (``v8DetectionLoss`` reads ``model.args``).
        box (float): Box (CIoU) loss gain. Defaults to 7.5.
        cls (float): Classification loss gain. Defaults to 0.5.
        dfl (float): Distribution focal loss gain. Defaults to 1.5.
        cls_loss (dict, optional): ``None`` or ``dict(type='bce')`` keeps Ultralytics' BCE;
            ``dict(type='focal', gamma=2.0, alpha=0.25)`` uses :class:`SigmoidFocalBCE`.
        tal_topk (int): ``topk`` of the task-aligned assigner. Defaults to 10.

    Returns:
        ultralytics.utils.loss.v8DetectionLoss: The criterion, on the model's device.
    """
    from ultralytics.utils.loss import v8DetectionLoss

    yolo_model.args = SimpleNamespace(box=float(box), cls=float(cls), dfl=float(dfl))
    criterion = v8DetectionLoss(yolo_model, tal_topk=tal_topk)
    cls_loss = dict(cls_loss or dict(type='bce'))
    kind = cls_loss.pop('type', 'bce')
    if kind == 'focal':
        criterion.bce = SigmoidFocalBCE(**cls_loss)
    elif kind != 'bce':
        raise ValueError(f"cls_loss type must be 'bce' or 'focal', got {kind!r}")
    return criterion


def unpack_yolo_loss(output: Any, batch_size: int) -> Tuple[Tensor, Dict[str, Tensor]]:
    """Read the return value of ``v8DetectionLoss.__call__`` of Ultralytics 8.4.190.

    8.4.190 returns ``(loss, loss_items)``: ``loss`` is a tensor of shape (3,) holding the gained
    (box, cls, dfl) losses **multiplied by the batch size**, ``loss_items`` a dict of the detached
    per-image values (``box_loss``, ``cls_loss``, ``dfl_loss``). Versions up to 8.4.60 returned a
    tensor of items instead of the dict. Anything else is refused with a clear error rather than silently
    mis-scaled.

    Args:
        output (Any): What the criterion returned.
        batch_size (int): Number of images in the batch.

    Returns:
        tuple[Tensor, dict]: The per-image-mean losses, shape (3,) with gradient, and the detached
        items.
    """
    if not (isinstance(output, tuple) and len(output) == 2 and isinstance(output[0], Tensor)
            and output[0].shape == (3, )):
        raise TypeError('Unexpected return value of ultralytics v8DetectionLoss: expected '
                        '(Tensor[3], dict) as in ultralytics 8.4.190, got '
                        f'{type(output).__name__}. Check the pinned ultralytics version.')
    loss, items = output
    if isinstance(items, Tensor):  # <= 8.4.60: a tensor of (box, cls, dfl) items
        items = dict(zip(('box_loss', 'cls_loss', 'dfl_loss'), items))
    return loss / batch_size, dict(items)


def pack_yolo_targets(data_samples: Sequence[Any],
                      input_shape: Tuple[int, int],
                      device: Optional[torch.device] = None) -> Dict[str, Tensor]:
    """Convert mmdet ground truth into the batch dict of Ultralytics' detection loss.

    The samples' boxes and labels are concatenated once and converted in one vectorised pass on
    the device they are on (the host, with :class:`~spinexr.models.data_preprocessors.
    YOLODetDataPreprocessor`, which leaves the samples there), so nothing waits for the device per
    image; the result is copied to ``device`` in a single transfer (pinned and non-blocking when
    that is CUDA). Boxes are clipped to the batch tensor and boxes left without area are dropped.

    Args:
        data_samples (Sequence[DetDataSample]): Samples with ``gt_instances.bboxes`` (xyxy pixels of
            the batch tensor; a tensor or mmdet ``HorizontalBoxes``) and ``gt_instances.labels``
            (0-based).
        input_shape (tuple[int, int]): ``(H, W)`` of the padded batch tensor.
        device (torch.device, optional): Device of the returned tensors. Defaults to the boxes'.

    Returns:
        dict[str, Tensor]: ``batch_idx`` (N,), ``cls`` (N, 1) and ``bboxes`` (N, 4) as xywh
        (centre) normalised by the batch width/height, as Ultralytics' ``v8DetectionLoss`` expects
        (views of one (N, 6) tensor).
    """
    h, w = input_shape
    boxes, labels, counts = [], [], []
    for sample in data_samples:
        gt = sample.gt_instances
        bboxes = gt.bboxes.tensor if hasattr(gt.bboxes, 'tensor') else gt.bboxes  # HorizontalBoxes
        boxes.append(bboxes.reshape(-1, 4))
        labels.append(gt.labels.reshape(-1))
        counts.append(boxes[-1].shape[0])
    src = boxes[0].device if boxes else torch.device('cpu')
    if sum(counts) == 0:
        packed = torch.zeros(0, 6, device=src)
    else:
        bboxes = torch.cat([b.to(src) for b in boxes]).float()
        cls = torch.cat([lab.to(src) for lab in labels]).float()
        idx = torch.repeat_interleave(  # sizes known on the host: no read-back
            torch.arange(len(counts), dtype=torch.float32), torch.tensor(counts),
            output_size=sum(counts)).to(src)
        x1 = bboxes[:, 0].clamp(0, w)
        y1 = bboxes[:, 1].clamp(0, h)
        x2 = bboxes[:, 2].clamp(0, w)
        y2 = bboxes[:, 3].clamp(0, h)
        packed = torch.stack((idx, cls, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w,
                              (y2 - y1) / h), 1)
        packed = packed[(x2 - x1 > 0) & (y2 - y1 > 0)]
    if device is not None and torch.device(device) != packed.device:
        if packed.device.type == 'cpu' and torch.device(device).type == 'cuda':
            packed = packed.pin_memory()
        packed = packed.to(device, non_blocking=True)
    return dict(batch_idx=packed[:, 0], cls=packed[:, 1:2], bboxes=packed[:, 2:])
