from .clahe import CLAHE

__all__ = ['CLAHE']
