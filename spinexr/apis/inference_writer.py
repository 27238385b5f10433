"""Writing of :mod:`spinexr.apis.inference`'s per-image outputs off the critical path.

The device loop hands each batch's host results to ONE writer thread through a bounded queue
(the loop never waits for drawing or encoding PNGs, and at most ``max_batches`` batches wait in
memory). The thread turns them into the findings records and writes the overlays. An error in the
thread is raised in the loop at its next :meth:`ResultWriter.put` (or at :meth:`close`), naming
what failed; an error in the loop lets the thread finish every batch already queued before the
error propagates, so nothing handed over is lost.
"""
import os.path as osp
import queue
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .inference_io import _record, _write_overlay

_STOP = object()


def overlay_stems(files: Sequence[str]) -> List[str]:
    """Unique overlay file stems in input order (``a``, ``a_1``, ... for repeated names)."""
    used, stems = set(), []
    for path in files:
        base = stem = Path(path).stem
        n = 1
        while stem in used:
            stem, n = f'{base}_{n}', n + 1
        used.add(stem)
        stems.append(stem)
    return stems


class ResultWriter:
    """A writer thread for findings records and overlay PNGs.

    Args:
        class_names (Sequence[str]): Names by label.
        overlay_dir (str, optional): Where overlays go (None: no overlays).
        stems (Sequence[str], optional): Overlay stem per input index (:func:`overlay_stems`).
        max_batches (int): Bound of the queue. Defaults to 4.
    """

    def __init__(self, class_names: Sequence[str], overlay_dir: Optional[str] = None,
                 stems: Optional[Sequence[str]] = None, max_batches: int = 4) -> None:
        self.class_names = list(class_names)
        self.overlay_dir = overlay_dir
        self.stems = list(stems or [])
        self._queue: 'queue.Queue[Any]' = queue.Queue(maxsize=max(1, int(max_batches)))
        self._records: Dict[int, dict] = {}
        self._error: Optional[BaseException] = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name='spinexr-infer-writer', daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ producer side
    def put(self, items: Sequence[Dict[str, Any]], dets: Sequence[Dict[str, Any]],
            images: Any = None) -> None:
        """Queue one batch: records (``index``, ``path``, ``orig_shape``, ``size``), their
        host detections, and the host uint8 batch the overlays are drawn from.

        Raises:
            RuntimeError: The writer failed earlier (its error is the cause).
        """
        if self._closed:
            raise RuntimeError('ResultWriter.put after close')
        job = (list(items), list(dets), images)
        while True:
            self._raise_error()
            try:
                self._queue.put(job, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> List[dict]:
        """Wait for every queued batch; returns the records in input order.

        Raises:
            RuntimeError: The writer failed (its error is the cause).
        """
        if not self._closed:
            self._closed = True
            while self._thread.is_alive():
                try:
                    self._queue.put(_STOP, timeout=0.1)
                    break
                except queue.Full:
                    continue
            self._thread.join()
        self._raise_error()
        return [self._records[i] for i in sorted(self._records)]

    def __enter__(self) -> 'ResultWriter':
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # drain what was handed over, then let the loop's error go on
            try:
                self.close()
            except RuntimeError:
                pass  # the loop's own error propagates; the writer's is its __context__

    def _raise_error(self) -> None:
        if self._error is not None:
            raise RuntimeError(f'writing inference outputs failed: {self._error}') \
                from self._error

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            if self._error is not None:
                continue  # keep draining so the producer is never blocked
            try:
                self._write(*job)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer
                self._error = exc

    def _write(self, items, dets, images) -> None:
        for i, (it, det) in enumerate(zip(items, dets)):
            rec = _record(it, det, self.class_names)
            if self.overlay_dir is not None and images is not None:
                rec['overlay'] = osp.join(self.overlay_dir, self.stems[it['index']] + '.png')
                h, w = it['size']
                display = images[i, :, :h, :w].numpy()
                display = display[0] if display.shape[0] == 1 else np.ascontiguousarray(
                    display.transpose(1, 2, 0))
                _write_overlay(rec['overlay'], display, it['orig_shape'], det, self.class_names)
            self._records[int(it['index'])] = rec
