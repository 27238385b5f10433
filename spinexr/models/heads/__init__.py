"""Classification heads for mmpretrain classifiers."""
from .binary_head import BinaryClsHead

__all__ = ['BinaryClsHead']
