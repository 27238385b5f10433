"""The two YOLO11-l recipes: the plain one and the draft's full recipe (issue #12 item 4).

``yolo11l_35e_vindr-640_draft-full.py`` must be the plain recipe plus exactly the draft's three
imbalance choices (copy-paste of rare classes in both training stages, focal classification loss,
class-balanced sampler), and both configs must build and train through ``SpinexrRunner`` with
their pipelines, sampler and loss as configured: here with the network swapped to YOLO11-n, every
image size scaled to 1/5, on tiny generated data moved in with ``data_root``, for one iteration
(one epoch of one batch holding every training image).
"""
import copy
import json
import math

import pytest
from mmengine.config import Config

from spinexr.testing import make_tiny_coco
from _tools import REPO

PLAIN = 'configs/yolo11/yolo11l_35e_vindr-640.py'
FULL = 'configs/yolo11/yolo11l_35e_vindr-640_draft-full.py'
NUM_TRAIN = 24
RARE_LABEL = 5  # 'Vertebral collapse', the real release's rarest class
FOCAL = dict(type='focal', gamma=2.0, alpha=0.25)


def _load(name: str) -> Config:
    return Config.fromfile(str(REPO / name))


def _stage2_hook(cfg) -> dict:
    hooks = [h for h in cfg['custom_hooks'] if h['type'] == 'CloseMosaicHook']
    assert len(hooks) == 1
    return hooks[0]


def _without_copy_paste(pipeline):
    return [t for t in pipeline if t['type'] != 'BoxCopyPaste']


def test_full_recipe_is_the_plain_one_plus_the_imbalance_choices():
    plain, full = _load(PLAIN).to_dict(), _load(FULL).to_dict()

    # the plain recipe: none of the three
    assert plain['train_dataloader']['sampler'] == dict(type='DefaultSampler', shuffle=True)
    assert plain['model']['cls_loss'] == dict(type='bce')  # Ultralytics' BCE
    for pipeline in (plain['train_pipeline'], _stage2_hook(plain)['switch_pipeline']):
        assert all(t['type'] != 'BoxCopyPaste' for t in pipeline)

    # the full recipe: all three, with the draft's settings
    assert full['model']['model_yaml'] == 'yolo11l.yaml'
    assert full['model']['cls_loss'] == FOCAL
    assert full['train_dataloader']['sampler'] == dict(
        type='ClassBalancedSampler', exponent=0.5, reduce='max', normal='class')
    copy_paste = dict(type='BoxCopyPaste', ann_file='annotations/train.json',
                      data_root='{data_root}', prob=0.2, rare_thr=0.05, max_num_pasted=3,
                      max_ioa=0.1)
    stage1 = full['train_dataloader']['dataset']['pipeline']
    stage2 = _stage2_hook(full)['switch_pipeline']
    assert stage1 == full['train_pipeline'] and stage2 == full['train_pipeline_stage2']
    for pipeline in (stage1, stage2):
        types = [t['type'] for t in pipeline]
        assert types.count('BoxCopyPaste') == 1
        i = types.index('BoxCopyPaste')
        assert types[i - 1] == 'LoadAnnotations' and pipeline[i] == copy_paste
    assert stage1.index(copy_paste) < [t['type'] for t in stage1].index('YOLOCachedMosaic')

    # ... and nothing else differs from the plain recipe
    undone = copy.deepcopy(full)
    undone.pop('copy_paste')
    undone['model']['cls_loss'] = plain['model']['cls_loss']
    undone['train_dataloader']['sampler'] = plain['train_dataloader']['sampler']
    undone['train_dataloader']['dataset']['pipeline'] = _without_copy_paste(stage1)
    undone['train_pipeline'] = _without_copy_paste(undone['train_pipeline'])
    undone['train_pipeline_stage2'] = _without_copy_paste(undone['train_pipeline_stage2'])
    hook = _stage2_hook(undone)
    hook['switch_pipeline'] = _without_copy_paste(hook['switch_pipeline'])
    assert undone == plain


@pytest.fixture(scope='module')
def rare_root(tmp_path_factory) -> str:
    """Tiny data in which one box (of the first image) is a rare class (1 box of ~40)."""
    root = tmp_path_factory.mktemp('recipes') / 'vindr'
    ann_file = make_tiny_coco(str(root), split='train', num_images=NUM_TRAIN, seed=0)
    make_tiny_coco(str(root), split='test', num_images=4, seed=1)
    with open(ann_file) as f:
        coco = json.load(f)
    for a in coco['annotations']:
        a['category_id'] = 1 + (a['category_id'] - 1) % 2  # Osteophytes / Surgical implant
    coco['annotations'][0]['category_id'] = RARE_LABEL + 1
    assert coco['annotations'][0]['image_id'] == 1
    assert len(coco['annotations']) > 20  # the rare class is under 5 % of the boxes
    with open(ann_file, 'w') as f:
        json.dump(coco, f)
    return f'{root}/'


def _tiny(cfg: Config, root: str, work_dir: str) -> Config:
    """The recipe on YOLO11-n at 1/5 of its image sizes, one batch of every training image."""
    from spinexr.experiments.profiles import scale_pipeline_sizes
    cfg = copy.deepcopy(cfg)
    cfg.data_root = root  # what --cfg-options data_root=DIR does
    cfg.work_dir = work_dir
    cfg.model.model_yaml = 'yolo11n.yaml'
    cfg.model = scale_pipeline_sizes(cfg.model, 128 / 640)  # multi-scale range
    for split in ('train', 'val', 'test'):
        loader = cfg[f'{split}_dataloader']
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.pipeline = scale_pipeline_sizes(loader.dataset.pipeline, 128 / 640)
    for hook in cfg.custom_hooks:
        if hook['type'] == 'CloseMosaicHook':
            hook['close_epochs'] = 0  # the one epoch trains the mosaic stage
            hook['switch_pipeline'] = scale_pipeline_sizes(hook['switch_pipeline'], 128 / 640)
    cfg.train_dataloader.batch_size = NUM_TRAIN  # one epoch = one iteration
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 2  # no validation
    cfg.randomness = dict(seed=0)
    return cfg


@pytest.mark.slow
@pytest.mark.parametrize('name', [PLAIN, FULL])
def test_recipe_trains_one_iteration(name, rare_root, tmp_path):
    from mmdet.datasets.transforms import LoadAnnotations
    from torch.nn import BCEWithLogitsLoss

    from spinexr.datasets.samplers import ClassBalancedSampler
    from spinexr.datasets.transforms import BoxCopyPaste
    from spinexr.engine import SpinexrRunner
    from spinexr.models.detectors.yolo11_loss import SigmoidFocalBCE

    full = name == FULL
    runner = SpinexrRunner.from_cfg(_tiny(_load(name), rare_root, str(tmp_path / 'work')))
    loader = runner.train_dataloader
    dataset = loader.dataset
    assert len(dataset) == NUM_TRAIN and dataset.ann_file == f'{rare_root}annotations/train.json'

    # the sampler as configured (the loader's batch sampler wraps it)
    sampler = loader.batch_sampler.sampler
    if full:
        assert isinstance(sampler, ClassBalancedSampler)
        assert (sampler.exponent, sampler.reduce, sampler.normal) == (0.5, 'max', 'class')
        rare = [i for i in range(len(dataset)) if RARE_LABEL in dataset.get_cat_ids(i)]
        assert rare == [0]
        # weights 1/sqrt(f): the rare image (f = 1/N) against a normal one (f = #normal/N)
        normal = [i for i in range(len(dataset)) if not dataset.get_cat_ids(i)]
        assert normal
        assert math.isclose(sampler.probs[0] / sampler.probs[normal[0]], math.sqrt(len(normal)))
        assert sampler.probs[0] == sampler.probs.max() > sampler.probs[1:].max()
    else:
        assert type(sampler).__name__ == 'DefaultSampler'

    # copy-paste right after loading, reading the training annotations at the moved root
    transforms = dataset.pipeline.transforms
    pasters = [t for t in transforms if isinstance(t, BoxCopyPaste)]
    stage2 = [h for h in runner.hooks if type(h).__name__ == 'CloseMosaicHook'][0]
    stage2_types = [t['type'] for t in stage2.switch_pipeline]
    if full:
        assert len(pasters) == 1
        cp = pasters[0]
        assert isinstance(transforms[transforms.index(cp) - 1], LoadAnnotations)
        assert cp.ann_file == f'{rare_root}annotations/train.json'
        assert (cp.prob, cp.rare_thr) == (0.2, 0.05)
        assert {k: len(v) for k, v in cp.rare_sources.items()} == {RARE_LABEL: 1}
        # stage 2 (built when the hook switches): the same transform, resolved to the moved root
        i = stage2_types.index('LoadAnnotations') + 1
        assert stage2_types[i] == 'BoxCopyPaste'
        assert stage2.switch_pipeline[i]['data_root'] == rare_root
        assert stage2.switch_pipeline[i]['ann_file'] == 'annotations/train.json'
    else:
        assert not pasters and 'BoxCopyPaste' not in stage2_types

    # the classification loss as configured
    model = runner.model
    assert model.cls_loss == (FOCAL if full else dict(type='bce'))

    runner.train()
    assert runner.iter == 1 and runner.epoch == 1
    criterion_bce = model._get_criterion().bce
    if full:
        assert isinstance(criterion_bce, SigmoidFocalBCE)
        assert (criterion_bce.gamma, criterion_bce.alpha) == (2.0, 0.25)
    else:
        assert isinstance(criterion_bce, BCEWithLogitsLoss)
    for key in ('loss', 'loss_cls', 'loss_box', 'loss_dfl'):
        value = runner.message_hub.get_scalar(f'train/{key}').current()
        assert math.isfinite(value), (key, value)
    assert runner.message_hub.get_scalar('train/loss_cls').current() > 0
    # the optimizer stepped (the accumulation window closes at the last iteration)
    state = runner.optim_wrapper.optimizer.state
    assert state and all('momentum_buffer' in s for s in state.values())
