"""The project's experiments as functions: import and call them, or run ``python -m spinexr.cli.X``.

* :func:`run_comparison` (:mod:`.comparison`): phantom -> conversion -> every detector (and the
  classifier chain) -> the comparison table;
* :func:`run_ablation` (:mod:`.ablation`): the class-imbalance ladder over seeds -> AP@0.5 table;
* :func:`run_classifier_chain` (:mod:`.classifier_chain`): CV -> weight search -> members ->
  ensemble -> table rows;
* :func:`cross_validate` (:mod:`.cross_validation`): study-grouped K-fold CV -> out-of-fold table;
* :func:`search_ensemble` (:mod:`spinexr.models.classifiers.ensemble_search`): ensemble weights and
  threshold on the out-of-fold table.

Their run profiles and config rescaling live in :mod:`.profiles`. Child processes (trainings and
tests that need a fresh mmengine state) start only through
:func:`spinexr.utils.process.run_command`.
"""
from spinexr.models.classifiers.ensemble_search import search_ensemble

from .ablation import run_ablation
from .classifier_chain import run_classifier_chain
from .comparison import run_comparison
from .cross_validation import cross_validate

__all__ = ['cross_validate', 'run_ablation', 'run_classifier_chain', 'run_comparison',
           'search_ensemble']
