from .affine import YOLORandomAffine  # noqa: F401
from .canvas import FitMosaicCanvas  # noqa: F401
from .copy_paste import BoxCopyPaste  # noqa: F401
from .hsv import UltralyticsHSVRandomAug  # noqa: F401
from .loading import LoadDicomFromFile  # noqa: F401
from .mosaic import YOLOCachedMosaic  # noqa: F401
