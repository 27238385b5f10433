"""A channels-last YOLO11 prepared for CPU inference runs its 1x1 convolutions through oneDNN
(no NCHW round trips through PyTorch's reference kernel), with the same outputs."""
import pytest
import torch
from torch.profiler import profile

from spinexr.apis.inference import build_detector
from spinexr.models.detectors.yolo11 import OneDNNPointwiseConv2d
from spinexr.testing.runs import REPO

CONFIG = f'{REPO}/configs/yolo11/yolo11n_35e_vindr-640.py'


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason='needs oneDNN')
def test_pointwise_convolutions_run_through_onednn():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # where PyTorch picks its reference kernel for 1x1 convolutions
    try:
        torch.manual_seed(0)
        model, _, _ = build_detector(CONFIG, None, channels_last=True)
        reference, _, _ = build_detector(CONFIG, None, channels_last=False)
        reference.load_state_dict(model.state_dict())
        pointwise = [m for m in model.yolo.modules() if isinstance(m, OneDNNPointwiseConv2d)]
        assert pointwise and all(m.kernel_size == (1, 1) for m in pointwise)
        assert not any(isinstance(m, OneDNNPointwiseConv2d) for m in reference.modules())
        x = torch.rand(2, 3, 96, 64)
        with torch.inference_mode():
            with profile() as prof:
                out = model.yolo(model._prepare_inputs(x))[0]
            ref = reference.yolo(x)[0]
        assert not [e.key for e in prof.key_averages() if 'slow_conv2d' in e.key]
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-3)
        # the weights are those of nn.Conv2d: the state dict keys are unchanged
        assert set(model.state_dict()) == set(reference.state_dict())
    finally:
        torch.set_num_threads(threads)
