"""ResumeStateHook's random-stream helpers: a weights_only round trip, and epoch isolation."""
import io
import random
from types import SimpleNamespace

import numpy as np
import torch

from spinexr.engine.hooks import ResumeStateHook
from spinexr.engine.hooks.resume_state import get_rng_state, set_rng_state


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_rng_state_survives_a_weights_only_checkpoint():
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    _draws()
    buf = io.BytesIO()
    torch.save(get_rng_state(), buf)
    expected = _draws()
    _draws()
    buf.seek(0)
    set_rng_state(torch.load(buf, weights_only=True))  # no allow-list needed
    assert _draws() == expected


def test_each_epoch_starts_where_the_previous_training_epoch_ended():
    hook = ResumeStateHook()
    runner = SimpleNamespace(iter=3)
    hook.before_train_epoch(runner)  # first epoch: nothing captured, nothing changed
    hook.after_train_epoch(runner)
    expected = _draws()
    _draws()  # e.g. validation between epochs
    hook.before_train_epoch(runner)
    assert _draws() == expected
