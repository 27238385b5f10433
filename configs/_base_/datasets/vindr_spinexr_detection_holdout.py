# VinDr-SpineXR detection with a study-grouped validation split held out of train, for checkpoint
# selection without touching the test labels. Convert with, e.g.:
#   python tools/dataset_converters/vindr_spinexr.py --data-root SRC --out-dir data/vindr_spinexr \
#       --val-fraction 0.1 --seed 0
# which writes annotations/train_split.json and annotations/val_split.json (no study in both).
# test_dataloader / test_evaluator stay on the test split (inherited) for the final evaluation.
_base_ = './vindr_spinexr_detection.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/train_split.json'))
val_dataloader = dict(dataset=dict(ann_file='annotations/val_split.json'))
val_evaluator = dict(ann_file='{data_root}/annotations/val_split.json')
