"""The generated tiny COCO set: the textured variant draws only the requested patterns."""
import json

import pytest

from spinexr.testing import make_tiny_coco


@pytest.mark.parametrize('k', [2, 3, 4])
def test_textured_classes_limits_the_patterns(tmp_path, k):
    ann = make_tiny_coco(str(tmp_path), 'train', num_images=40, img_size=(64, 96), seed=0,
                         textured=True, textured_classes=k)
    coco = json.loads(open(ann).read())
    used = {a['category_id'] for a in coco['annotations']}
    assert used == set(range(1, k + 1))
    assert len(coco['categories']) == 7  # the class list itself is unchanged
