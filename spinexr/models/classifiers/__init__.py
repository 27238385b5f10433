from .ensemble import WeightedEnsembleClassifier  # noqa: F401
