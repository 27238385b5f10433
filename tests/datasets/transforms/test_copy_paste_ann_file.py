"""BoxCopyPaste reads its ann_file as JSON whatever its name: a '.pkl' is never unpickled
(mmengine's fileio.load picks the pickle reader by extension; issue 11)."""
import os
import pickle

import pytest

from spinexr.datasets.transforms.copy_paste import BoxCopyPaste


class _Payload:
    """Unpickling it runs ``os.mkdir(marker)``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker, ))


def test_pickle_ann_file_is_not_unpickled(tmp_path):
    marker = tmp_path / 'was_executed'
    ann = tmp_path / 'train.pkl'
    ann.write_bytes(pickle.dumps(dict(images=[], annotations=[], categories=[],
                                      note=_Payload(str(marker)))))
    with pytest.raises(ValueError):
        BoxCopyPaste(ann_file=str(ann))
    assert not marker.exists()
