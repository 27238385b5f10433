"""The state a training pipeline carries from one sample to the next, saved for an exact resume.

Most transforms are functions of the sample and the global random streams, but some keep state
across samples: mmdet's ``CachedMosaic`` and ``CachedMixUp`` mix the current image with images
they cached earlier, and a transform with its own ``numpy.random.Generator`` (``_rng``, as
:class:`~spinexr.datasets.transforms.BoxCopyPaste` has with a ``seed``) advances that generator.
A resumed run that starts with empty caches and fresh generators draws different mosaics than the
run it continues. :func:`pipeline_state` captures that state and :func:`load_pipeline_state` puts
it back.

The state holds only tensors, numbers, strings and containers, so a checkpoint that carries it
still loads with ``torch.load(weights_only=True)``:

* a cache entry whose producing transforms are all pure loaders (:data:`PURE_LOADERS`) is stored
  as the dataset index it came from and rebuilt on load by running those loaders again (a
  ``CachedMosaic`` right after loading would otherwise put 40 full-size radiographs in every
  checkpoint);
* any other cache entry (e.g. ``CachedMixUp`` after a random affine) is stored as its arrays
  (numpy arrays and mmdet boxes become tensors with a type tag).

Only the transforms of the process that runs them are seen: with dataloader workers each worker
holds its own copy of the pipeline, out of reach of the main process.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

#: Transforms whose output is a function of the dataset record alone (no randomness, no state).
PURE_LOADERS = frozenset({'LoadImageFromFile', 'LoadAnnotations', 'LoadDicomFromFile'})

_TAG = '__spinexr_state__'


def _encode(value: Any, where: str) -> Any:
    """A ``weights_only``-loadable copy of a value found in a pipeline's results dict."""
    from mmdet.structures.bbox import BaseBoxes, get_box_type
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f'{where}: cannot save an object array in a checkpoint')
        return {_TAG: 'ndarray', 'data': torch.from_numpy(np.ascontiguousarray(value)).clone()}
    if isinstance(value, np.generic):
        return {_TAG: 'npscalar', 'dtype': value.dtype.str, 'value': value.item()}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, BaseBoxes):
        name, _ = get_box_type(type(value))  # the registered name, e.g. 'hbox'
        return {_TAG: 'boxes', 'type': name, 'data': value.tensor.detach().cpu().clone()}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f'{where}: only dicts with string keys can be saved')
        return {k: _encode(v, f'{where}.{k}') for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f'{where}[{i}]') for i, v in enumerate(value)]
        return items if isinstance(value, list) else {_TAG: 'tuple', 'items': items}
    raise TypeError(f'{where}: a {type(value).__name__} cannot be saved in a checkpoint')


def _decode(value: Any) -> Any:
    """Inverse of :func:`_encode`."""
    from mmdet.structures.bbox import get_box_type
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value.clone() if isinstance(value, torch.Tensor) else value
    tag = value.get(_TAG)
    if tag is None:
        return {k: _decode(v) for k, v in value.items()}
    if tag == 'ndarray':
        return value['data'].numpy().copy()
    if tag == 'npscalar':
        return np.dtype(value['dtype']).type(value['value'])
    if tag == 'boxes':
        _, box_type = get_box_type(value['type'])
        return box_type(value['data'].clone())
    if tag == 'tuple':
        return tuple(_decode(v) for v in value['items'])
    raise ValueError(f'unknown pipeline state entry {tag!r}')


def _all_pure(transforms: Sequence[object]) -> bool:
    return all(type(t).__name__ in PURE_LOADERS for t in transforms)


def pipeline_state(transforms: Sequence[object]) -> List[Optional[dict]]:
    """The cross-sample state of each transform of a pipeline.

    Args:
        transforms (Sequence[object]): The pipeline's transforms in order (``Compose.transforms``).

    Returns:
        list[dict | None]: One entry per transform: ``None`` for a stateless one, else a dict with
        ``type`` (class name) and ``cache`` and/or ``rng``.

    Raises:
        TypeError: A cached results dict holds a value that cannot be saved.
    """
    states: List[Optional[dict]] = []
    for pos, t in enumerate(transforms):
        state: Dict[str, Any] = {}
        cache = getattr(t, 'results_cache', None)
        if isinstance(cache, list):
            by_index = _all_pure(transforms[:pos]) and all('sample_idx' in r for r in cache)
            if by_index:
                state['cache'] = {'sample_idx': [int(r['sample_idx']) for r in cache]}
            else:
                state['cache'] = {'results': [
                    _encode(r, f'{type(t).__name__}.results_cache[{i}]')
                    for i, r in enumerate(cache)]}
        rng = getattr(t, '_rng', None)
        if isinstance(rng, np.random.Generator):
            state['rng'] = rng.bit_generator.state
        states.append(dict(type=type(t).__name__, **state) if state else None)
    return states


def load_pipeline_state(transforms: Sequence[object], states: Sequence[Optional[dict]],
                        dataset: Optional[object] = None) -> None:
    """Put back what :func:`pipeline_state` captured.

    Args:
        transforms (Sequence[object]): The same pipeline's transforms (``Compose.transforms``).
        states (Sequence[dict | None]): What :func:`pipeline_state` returned.
        dataset (object, optional): The dataset whose ``get_data_info(idx)`` gives the records
            that cache entries saved by index are rebuilt from.

    Raises:
        ValueError: The pipeline does not match the saved one (other transforms), or a cache saved
            by index and no dataset to rebuild it from.
    """
    names = [type(t).__name__ for t in transforms]
    saved = [s['type'] for s in states if s is not None]
    if len(states) != len(transforms) or saved != [
            n for n, s in zip(names, states) if s is not None]:
        raise ValueError(f'the saved pipeline state (stateful transforms {saved}, '
                         f'{len(states)} transforms) does not fit this pipeline {names}')
    for pos, (t, state) in enumerate(zip(transforms, states)):
        if state is None:
            continue
        if 'rng' in state:
            t._rng.bit_generator.state = state['rng']
        cache = state.get('cache')
        if cache is None:
            continue
        if 'sample_idx' in cache:
            if dataset is None:
                raise ValueError(f'{names[pos]}: its cache was saved by dataset index; pass the '
                                 'dataset to rebuild it')
            t.results_cache = [_rebuild(transforms[:pos], dataset, i) for i in cache['sample_idx']]
        else:
            t.results_cache = [_decode(r) for r in cache['results']]


def _rebuild(loaders: Sequence[object], dataset: object, idx: int) -> dict:
    """Run the pure loaders on record ``idx`` again, as the pipeline did before caching it."""
    results = dataset.get_data_info(idx)
    for t in loaders:
        results = t(results)
    return results
