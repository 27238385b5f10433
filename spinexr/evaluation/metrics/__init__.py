from .binary_metric import BinaryClsMetric  # noqa: F401
from .vindr_det_metric import VinDrDetMetric  # noqa: F401
