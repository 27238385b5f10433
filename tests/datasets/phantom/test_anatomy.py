"""Tests of the phantom's anatomy: a stacked column, geometric lesions change it as intended."""
import numpy as np
import pytest

from spinexr.datasets.phantom.anatomy import build_geometry, render_bone, sample_spine
from spinexr.datasets.phantom.lesions import LesionSite, apply_geometric


@pytest.mark.parametrize('view', ['lateral', 'ap'])
def test_column_is_stacked_bottom_up(view):
    spec = sample_spine(np.random.default_rng(0), 1400, 620, view)
    geom = build_geometry(spec)
    ys = [v.center[1] for v in geom.vertebrae]
    assert all(a > b for a, b in zip(ys, ys[1:]))  # level 0 lowest
    assert ys[-1] < 0 < ys[0] < spec.height  # the column leaves the image at the top
    assert sum(geom.inside(v, 10) for v in geom.vertebrae) >= 5
    bone, ref = render_bone(geom)
    assert bone.shape == (1400, 620) and bone.dtype == np.float32
    c = geom.vertebrae[1].center.astype(int)
    assert bone[c[1], c[0]] > 0.3 and ref['pitch'] > ref['body_h'] > 0
    with pytest.raises(ValueError, match='view'):
        sample_spine(np.random.default_rng(0), 100, 50, 'oblique')


def _gap(geom, level):
    upper, lower = geom.vertebrae[level], geom.vertebrae[level - 1]
    return np.linalg.norm(upper.center - lower.center) - (upper.height + lower.height) / 2


def test_geometric_lesions_change_the_column():
    rng = np.random.default_rng(1)
    spec = sample_spine(rng, 1400, 620, 'lateral')
    base = build_geometry(spec)
    apply_geometric(spec, [LesionSite('Disc space narrowing', 2),
                           LesionSite('Vertebral collapse', 4),
                           LesionSite('Spondylolysthesis', 6)], np.random.default_rng(2))
    geom = build_geometry(spec)
    assert _gap(geom, 2) < 0.6 * _gap(base, 2)
    v, v0 = geom.vertebrae[4], base.vertebrae[4]
    assert v.height < 0.8 * v0.height and v.h_ant < v.h_post  # flattened, wedged anteriorly
    across = np.array([np.cos(v.angle), np.sin(v.angle)]) * v.facing
    shift = lambda g: (g.vertebrae[6].center - g.vertebrae[5].center) @ across  # noqa: E731
    assert shift(geom) - shift(base) > 0.1 * spec.body_w[6]
