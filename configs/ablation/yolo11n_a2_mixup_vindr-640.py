# Ablation step 2, "+ mixup 0.1": exactly the YOLO11-n recipe (configs/yolo11/), i.e. step 1 plus
# CachedMixUp with probability 0.1.
_base_ = '../yolo11/yolo11n_35e_vindr-640.py'
