"""Evaluation: metrics, the VinDr protocol, bootstrap intervals, decision fusion."""
from . import metrics  # noqa: F401
from .bootstrap import bootstrap_map_ci  # noqa: F401
from .coco_ap import ImageGT, ImagePred, load_coco_gt, match_coco  # noqa: F401
from .det_summary import summarize_detections  # noqa: F401
from .fusion import gate_predictions, load_abnormal_probs  # noqa: F401
from .voc_ap import eval_voc101  # noqa: F401
