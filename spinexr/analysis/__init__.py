"""Analysis: experiments' results put side by side (the model comparison table).

:mod:`~spinexr.analysis.model_table` evaluates trained detectors on one test split,
:mod:`~spinexr.analysis.cost` measures their speed, size and training time,
:mod:`~spinexr.analysis.classifier_report` turns classifier prediction files into rows and ROC
curves, and :mod:`~spinexr.analysis.report` writes the table files. The metrics themselves live
in :mod:`spinexr.evaluation`.
"""
from .model_table import (ModelSpec, evaluate_model, find_checkpoint,  # noqa: F401
                          find_config, run_comparison_table, spec_from_work_dir)
from .report import CLASSIFIER_COLUMNS, write_comparison  # noqa: F401
