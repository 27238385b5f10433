# EfficientNetV2-S classifier with sigmoid focal loss (gamma 2.0, alpha 0.25) instead of BCE.
_base_ = './efficientnetv2-s_60e_vindr-384.py'

model = dict(head=dict(loss=dict(_delete_=True, type='BinaryFocalLoss', gamma=2.0, alpha=0.25)))
