"""Multi-scale batch resizing whose size draw stays on the host in single-process training."""
import random
from typing import Tuple

import torch
from mmdet.models.data_preprocessors import BatchSyncRandomResize
from mmdet.registry import MODELS
from mmengine.dist import get_world_size


@MODELS.register_module()
class YOLOBatchSyncRandomResize(BatchSyncRandomResize):
    """mmdet's :class:`~mmdet.models.data_preprocessors.BatchSyncRandomResize` without device
    round trips when there is one process.

    mmdet draws the next batch size on the host, writes it into a tensor on the batch's device,
    broadcasts it to all ranks and reads it back with two ``.item()`` calls: on a GPU that is a
    host-to-device copy and two device-to-host syncs every iteration, even in single-process
    training where there is nothing to broadcast. Here a single process keeps the draw on the host
    (the same ``random.randint`` call, so the same sizes from the same random stream, as
    Ultralytics draws its multi-scale size); several processes still broadcast, as mmdet does, so
    every rank resizes to the same size.

    Args:
        random_size_range (tuple[int, int]): Range of the long side, as in mmdet.
        interval (int): Draw a new size every ``interval`` iterations. Defaults to 10 (mmdet's);
            the YOLO11 recipe uses 1.
        size_divisor (int): Sizes are multiples of it. Defaults to 32.
    """

    def __init__(self,
                 random_size_range: Tuple[int, int],
                 interval: int = 10,
                 size_divisor: int = 32) -> None:
        super().__init__(random_size_range=random_size_range, interval=interval,
                         size_divisor=size_divisor)

    def _get_random_size(self, aspect_ratio: float, device: torch.device) -> Tuple[int, int]:
        """Draw the next ``(h, w)``; broadcast from rank 0 only with several processes."""
        if get_world_size() > 1:
            return super()._get_random_size(aspect_ratio, device)
        size = random.randint(*self._random_size_range)
        return (self._size_divisor * size, self._size_divisor * int(aspect_ratio * size))
