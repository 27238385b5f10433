from .class_balanced import ClassBalancedSampler, get_image_labels  # noqa: F401
