# Ablation step 4, "+ focal loss": step 3 with the YOLO11 head's BCE replaced by focal loss
# (gamma 2.0, alpha 0.25; same normalisation by the target-score sum).
_base_ = './yolo11n_a3_copy-paste_vindr-640.py'

model = dict(cls_loss=dict(type='focal', gamma=2.0, alpha=0.25))
