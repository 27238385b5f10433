from .focal_loss import BinaryFocalLoss  # noqa: F401
