# Ablation step 5, "+ class-balanced sampling": step 4 with spinexr's ClassBalancedSampler
# (image weight = max over its classes of 1/sqrt(f_c); normal images as a class of their own;
# epoch length unchanged).
_base_ = './yolo11n_a4_focal_vindr-640.py'

train_dataloader = dict(
    sampler=dict(_delete_=True, type='ClassBalancedSampler', exponent=0.5, reduce='max',
                 normal='class'))
