"""Close mosaic for the last N epochs of a run, counted from the run's own ``max_epochs``."""
from numbers import Integral
from typing import Optional, Sequence

from mmdet.engine.hooks import PipelineSwitchHook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class CloseMosaicHook(PipelineSwitchHook):
    """Switch the training pipeline for the last ``close_epochs`` epochs (Ultralytics'
    ``close_mosaic``).

    mmdet's :class:`~mmdet.engine.hooks.PipelineSwitchHook` takes an absolute ``switch_epoch``,
    which a config computes from its ``max_epochs`` when it is parsed: a later
    ``--cfg-options train_cfg.max_epochs=100`` keeps the old switch epoch without a word. This hook
    takes the number of closing epochs instead and computes
    ``switch_epoch = max(0, runner.max_epochs - close_epochs)`` when training starts, as
    Ultralytics' trainer closes mosaic at ``epoch >= epochs - close_mosaic``. The switch itself is
    mmdet's: a run resumed after the switch epoch switches at its first epoch, and persistent
    dataloader workers are restarted to pick up the new pipeline.

    Args:
        close_epochs (int): Train the last ``close_epochs`` epochs with ``switch_pipeline``.
            0 never switches (Ultralytics' ``close_mosaic=0``); ``close_epochs >= max_epochs``
            switches before the first epoch.
        switch_pipeline (Sequence[dict]): The pipeline to switch to (e.g. the recipe's pipeline
            without mosaic / mixup).

    Raises:
        ValueError: If ``close_epochs`` is not an integer >= 0.

    Example:
        >>> custom_hooks = [dict(type='CloseMosaicHook', close_epochs=10,
        ...                      switch_pipeline=train_pipeline_stage2)]
    """

    def __init__(self, close_epochs: int, switch_pipeline: Sequence[dict]) -> None:
        if isinstance(close_epochs, bool) or not isinstance(close_epochs, Integral) \
                or close_epochs < 0:
            raise ValueError(f'close_epochs must be an integer >= 0 (0: never switch), '
                             f'got {close_epochs!r}')
        # mmdet's switch_epoch is unknown until the runner's max_epochs is
        super().__init__(switch_epoch=None, switch_pipeline=switch_pipeline)
        self.close_epochs = int(close_epochs)
        self._resolved = False

    def switch_epoch_for(self, max_epochs: int) -> Optional[int]:
        """The first epoch (0-based) trained with ``switch_pipeline``, or None (never).

        Args:
            max_epochs (int): The run's number of epochs.

        Returns:
            int | None: ``max(0, max_epochs - close_epochs)``, None when ``close_epochs`` is 0.
        """
        if self.close_epochs == 0:
            return None
        return max(0, int(max_epochs) - self.close_epochs)

    def _resolve(self, runner) -> None:
        """Set ``switch_epoch`` from the runner's ``max_epochs`` and say it, once per run."""
        if self._resolved:
            return
        self.switch_epoch = self.switch_epoch_for(runner.max_epochs)
        self._resolved = True
        if self.switch_epoch is None:
            runner.logger.info('CloseMosaicHook: close_epochs=0, the training pipeline is never '
                               'switched')
        else:
            runner.logger.info(
                f'CloseMosaicHook: the training pipeline switches at epoch {self.switch_epoch + 1} '
                f'of {runner.max_epochs} (the last {runner.max_epochs - self.switch_epoch} '
                f'epochs, close_epochs={self.close_epochs})')

    def before_train(self, runner) -> None:
        """Compute the switch epoch from the run's ``max_epochs`` (after any resume)."""
        self._resolve(runner)

    def before_train_epoch(self, runner) -> None:
        """Switch the pipeline at the first epoch >= the switch epoch (mmdet's hook)."""
        self._resolve(runner)
        if self.switch_epoch is None:
            return
        super().before_train_epoch(runner)
