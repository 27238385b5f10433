# Classifier schedule: AdamW lr 1e-4, cosine decay over 60 epochs, validation every epoch,
# early stopping on validation AUROC (patience 10), best checkpoint by validation AUROC.
# It builds on spinexr's classification runtime (mmpretrain's default runtime + plugin keys) so
# that it can change `default_hooks` without a duplicate-key clash: a leaf lists it INSTEAD OF
# '../_base_/default_runtime_cls.py'.
_base_ = '../default_runtime_cls.py'

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01),
    clip_grad=None)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=60, eta_min=1e-6, by_epoch=True, begin=0, end=60,
         convert_to_iter_based=True)
]
train_cfg = dict(by_epoch=True, max_epochs=60, val_interval=1)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                    save_best='binary/auroc', rule='greater'))
custom_hooks = [
    # AUROC is reported in percent; any increase resets the patience.
    dict(type='EarlyStoppingHook', monitor='binary/auroc', rule='greater', min_delta=0.0,
         patience=10)
]
# Linear scaling of the lr with the total batch size (enable with --auto-scale-lr).
auto_scale_lr = dict(base_batch_size=32)
