"""Tiny versions of the Ultralytics networks spinexr adapts, for tests that must run on a CPU."""
import copy


def tiny_rtdetr_yaml(nc: int = 7) -> dict:
    """Ultralytics' ``rtdetr-l.yaml`` at a size a CPU trains in seconds.

    Every width / 8, one repeat per block and a 2-layer, 30-query, 32-wide decoder: the same layer
    graph (29 layers) as RT-DETR-l, whose full size takes 15-25 s per 64 px training iteration on
    2 CPU cores.

    Args:
        nc (int): Number of classes. Defaults to 7 (VinDr-SpineXR's lesion classes).

    Returns:
        dict: A model dict ``RTDETRDetector(model_yaml=...)`` and Ultralytics'
        ``RTDETRDetectionModel`` accept.
    """
    from ultralytics.nn.tasks import yaml_model_load
    d = copy.deepcopy(yaml_model_load('rtdetr-l.yaml'))
    for layer in d['backbone'] + d['head']:
        _, _, module, args = layer
        layer[1] = 1
        if module in ('HGStem', 'HGBlock'):
            args[0] //= 8
            args[1] //= 8
        elif module in ('DWConv', 'Conv', 'RepC3', 'AIFI'):
            args[0] //= 8
        elif module == 'RTDETRDecoder':  # nc, hidden, queries, points, heads, layers, ffn
            layer[3] = ['nc', 32, 30, 4, 4, 2, 64]
    d.update(nc=nc, scale='l')
    return d
