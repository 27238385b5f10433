# The VinDr-SpineXR paper's classifier: DenseNet-121, DenseNet-169 and DenseNet-201, their logits
# averaged (then the sigmoid). The same WeightedEnsembleClassifier as ensemble_vindr-384.py with
# average='logit'; no test-time augmentation (the paper states none; add model.tta="('hflip',)"
# to try it). Equal weights and threshold 0.5, flagged as not validated, unless a weights file
# from tools/search_ensemble.py --average logit (on out-of-fold predictions) is given; a file
# searched for the probability average is refused. How to run it: docs/classification.md.
_base_ = './ensemble_vindr-384.py'

model = dict(
    members=[
        dict(name='densenet121', config='configs/classifiers/densenet121_60e_vindr-384.py',
             checkpoint=None),
        dict(name='densenet169', config='configs/classifiers/densenet169_60e_vindr-384.py',
             checkpoint=None),
        dict(name='densenet201', config='configs/classifiers/densenet201_60e_vindr-384.py',
             checkpoint=None),
    ],
    average='logit',
    tta=())

test_evaluator = dict(prediction_file='work_dirs/ensemble-densenet_vindr-384/test_predictions.csv')
