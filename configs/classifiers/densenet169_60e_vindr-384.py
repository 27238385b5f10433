# DenseNet-169 abnormal-vs-normal classifier (a member of the VinDr-SpineXR paper's ensemble,
# configs/classifiers/ensemble-densenet_vindr-384.py). Everything but the backbone's depth and the
# head's width (DenseNet-169's last stage has 1664 channels) is the DenseNet-121 recipe.
# From scratch unless a local ImageNet checkpoint is given (see densenet121_60e_vindr-384.py).
_base_ = './densenet121_60e_vindr-384.py'

model = dict(backbone=dict(arch='169'), head=dict(in_channels=1664))
