"""Converters from released dataset layouts to the spinexr layout (PNG + COCO)."""
from .vindr_spinexr import (Problem, SplitSummary, build_coco, convert_image,
                            convert_vindr_spinexr, read_split_csv, split_by_study, target_size)

__all__ = ['Problem', 'SplitSummary', 'build_coco', 'convert_image', 'convert_vindr_spinexr',
           'read_split_csv', 'split_by_study', 'target_size']
