"""The VinDr-SpineXR detection dataset (converted COCO layout) for MMDetection."""
from typing import List, Union

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

from spinexr.datasets.metainfo import DET_METAINFO

#: Image-record keys written by the converter that are copied into every ``data_info``.
EXTRA_IMAGE_KEYS = ('image_id', 'study_id', 'series_id', 'orig_width', 'orig_height', 'abnormal')


@DATASETS.register_module()
class VinDrSpineXRDataset(CocoDataset):
    """VinDr-SpineXR lesion detection: 7 classes, read from the converter's COCO files.

    The annotation file is ``DST/annotations/{split}.json`` written by
    ``tools/dataset_converters/vindr_spinexr.py`` (or ``make_tiny_coco``); ``file_name`` is relative
    to ``data_root``, so use ``data_prefix=dict(img='')``. Boxes are in PNG pixels.

    Besides mmdet's keys (``img_path``, ``img_id``, ``height``, ``width``, ``instances``), every
    ``data_info`` carries the converter's ``image_id`` (32-hex id of the release), ``study_id``,
    ``series_id``, ``orig_width`` / ``orig_height`` (size of the original DICOM, to map boxes back
    to DICOM pixels) and ``abnormal`` (the CSV had lesion rows for it).

    About half of the release is "No finding" images without boxes. mmdet's COCO configs set
    ``filter_cfg=dict(filter_empty_gt=True, min_size=32)``, which would silently drop them when
    inherited, so the spinexr configs set ``filter_cfg=dict(filter_empty_gt=False, min_size=0)``
    for training: normal images are the negatives that teach the detector not to fire on healthy
    spines. Pass ``filter_empty_gt=True`` to train on abnormal images only. (Test mode never
    filters.)

    Args:
        **kwargs: Passed to :class:`mmdet.datasets.CocoDataset` (``ann_file``, ``data_root``,
            ``data_prefix``, ``filter_cfg``, ``pipeline``, ``test_mode``, ...).
    """

    METAINFO = DET_METAINFO

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        """Parse one image record, keeping the converter's extra keys.

        Args:
            raw_data_info (dict): ``raw_img_info`` and ``raw_ann_info`` of one image.

        Returns:
            dict: mmdet's ``data_info`` plus :data:`EXTRA_IMAGE_KEYS` present in the record.
        """
        data_info = super().parse_data_info(raw_data_info)
        img_info = raw_data_info['raw_img_info']
        for key in EXTRA_IMAGE_KEYS:
            if key in img_info:
                data_info[key] = img_info[key]
        return data_info
