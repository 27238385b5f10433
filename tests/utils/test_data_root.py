"""spinexr.utils.data_root: the one top-level data_root, resolved at run time."""
from collections import namedtuple

import pytest
from mmengine.config import Config

from spinexr.utils.data_root import (PLACEHOLDER, check_resolved, find_placeholders,
                                     resolve_data_root, set_data_root, substitute)


def _cfg(**extra) -> Config:
    return Config(dict(
        data_root='data/vindr_spinexr/',
        train_dataloader=dict(dataset=dict(
            data_root='{data_root}', ann_file='annotations/train.json',
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='BoxCopyPaste', data_root='{data_root}',
                           ann_file='annotations/train.json')])),
        val_evaluator=dict(type='CocoMetric', ann_file='{data_root}/annotations/test.json'),
        custom_hooks=[dict(type='CloseMosaicHook', close_epochs=10, switch_pipeline=(
            dict(type='BoxCopyPaste', data_root='{data_root}', ann_file='a.json'), ))],
        work_dir='work_dirs/x', **extra))


@pytest.mark.parametrize('root,value,expected', [
    ('/data/v/', '{data_root}', '/data/v/'),
    ('/data/v', '{data_root}', '/data/v'),
    ('/data/v/', '{data_root}/annotations/test.json', '/data/v/annotations/test.json'),
    ('/data/v', '{data_root}/annotations/test.json', '/data/v/annotations/test.json'),
    ('/data/v//', '{data_root}//a.json', '/data/v/a.json'),
    ('/', '{data_root}/a.json', '/a.json'),
    ('', '{data_root}/a.json', 'a.json'),
    ('r', 'x/{data_root}/y', 'x/r/y'),
    ('/data/v', 'no placeholder', 'no placeholder'),
])
def test_substitute(root, value, expected):
    assert substitute(value, root) == expected


def test_resolve_moves_every_path_and_nothing_else():
    cfg = _cfg()
    cfg.merge_from_dict({'data_root': '/moved/root/'})  # what --cfg-options data_root=... does
    out = resolve_data_root(cfg)
    assert out is cfg
    ds = cfg.train_dataloader.dataset
    assert ds.data_root == '/moved/root/' and ds.ann_file == 'annotations/train.json'
    assert ds.pipeline[1].data_root == '/moved/root/'
    assert cfg.val_evaluator.ann_file == '/moved/root/annotations/test.json'
    switch = cfg.custom_hooks[0].switch_pipeline
    assert isinstance(switch, tuple) and switch[0].data_root == '/moved/root/'
    assert cfg.work_dir == 'work_dirs/x' and cfg.data_root == '/moved/root/'
    assert find_placeholders(cfg) == []
    # idempotent: a second call (and a later change of data_root) changes nothing
    cfg.data_root = '/elsewhere/'
    resolve_data_root(cfg)
    assert ds.data_root == '/moved/root/'


def test_resolve_with_explicit_root_on_a_plain_dict():
    Pair = namedtuple('Pair', 'a b')
    cfg = dict(data_root='old/', x=['{data_root}', Pair('{data_root}/p', 1)])
    resolve_data_root(cfg, '/new')
    assert cfg == dict(data_root='/new', x=['/new', Pair('/new/p', 1)])
    assert isinstance(cfg['x'][1], Pair)


def test_literal_paths_are_left_alone():
    cfg = _cfg()
    cfg.train_dataloader.dataset.data_root = '/pinned/'  # one dataset pinned on purpose
    resolve_data_root(cfg, '/moved/')
    assert cfg.train_dataloader.dataset.data_root == '/pinned/'
    assert cfg.val_evaluator.ann_file == '/moved/annotations/test.json'


def test_errors_name_the_keys():
    cfg = _cfg()
    cfg.pop('data_root')
    with pytest.raises(ValueError, match=r'train_dataloader\.dataset\.data_root.*no top-level '
                       r'data_root'):
        resolve_data_root(cfg)
    assert resolve_data_root(Config(dict(a='b'))).a == 'b'  # nothing to resolve, no root: fine
    with pytest.raises(TypeError, match='path string'):
        resolve_data_root(Config(dict(data_root=3, p='{data_root}')))
    with pytest.raises(ValueError, match='not the placeholder'):
        resolve_data_root(_cfg(), PLACEHOLDER)


def test_find_placeholders_paths():
    assert find_placeholders(_cfg()) == [
        'train_dataloader.dataset.data_root', 'train_dataloader.dataset.pipeline.1.data_root',
        'val_evaluator.ann_file', 'custom_hooks.0.switch_pipeline.0.data_root']


def test_set_data_root_refuses_a_config_without_placeholders():
    cfg = set_data_root(_cfg(), '/d/')
    assert cfg.data_root == '/d/' and cfg.train_dataloader.dataset.data_root == PLACEHOLDER
    with pytest.raises(ValueError, match='--data-root: .* has no path written with'):
        set_data_root(Config(dict(data_root='x/', ds=dict(data_root='x/'))), '/d/')


def test_check_resolved():
    assert check_resolved('/a/b.json', 'ann_file', 'T') == '/a/b.json'
    with pytest.raises(ValueError, match=r"T: ann_file='\{data_root\}/a' still holds .*"
                       'resolve_data_root'):
        check_resolved('{data_root}/a', 'ann_file', 'T')


def test_box_copy_paste_refuses_an_unresolved_path():
    from spinexr.datasets.transforms.copy_paste import BoxCopyPaste
    with pytest.raises(ValueError, match=r'BoxCopyPaste: data_root=.*resolve_data_root'):
        BoxCopyPaste(ann_file='annotations/train.json', data_root=PLACEHOLDER)
    with pytest.raises(ValueError, match=r'BoxCopyPaste: ann_file=.*SpinexrRunner'):
        BoxCopyPaste(ann_file=PLACEHOLDER + '/annotations/train.json')
