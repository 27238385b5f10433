"""VinDr-SpineXR datasets, conversion, transforms, samplers and the synthetic phantom."""
from . import samplers, transforms  # noqa: F401
from .vindr_cls import VinDrSpineXRClsDataset  # noqa: F401
from .vindr_det import VinDrSpineXRDataset  # noqa: F401
from .collate import yolo_collate  # noqa: F401
