"""Converters from released dataset layouts to the spinexr layout (PNG + COCO)."""
from .vindr_csv import Problem, file_name_problem, read_split_csv
from .vindr_spinexr import (SplitSummary, build_coco, convert_image, convert_vindr_spinexr,
                            split_by_study, target_size)

__all__ = ['Problem', 'SplitSummary', 'build_coco', 'convert_image', 'convert_vindr_spinexr',
           'file_name_problem', 'read_split_csv', 'split_by_study', 'target_size']
