"""A Keras callback that feeds a :class:`~gdbench.tracking.TrialTracker`."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gdbench.tracking.trial_tracker import TrialTracker


class TrackingCallback(keras.callbacks.Callback):
    """Logs every epoch's metrics, and weight (and gradient) histograms at epochs' ends.

    The histograms are how the lectures diagnose training: weights that do
    not move, gradients that vanish layer after layer or explode. The weights'
    cost little beside an epoch: about 1.5 ms for the digits MLP's 4
    variables (copying them out of the model, bucketing, writing), 1 % of
    its epoch.

    Args:
        trial: the trial's tracker.
        histogram_every: every this many epochs (and at the last epoch), write
            a histogram of every trainable variable (``weights/<path>``) and,
            with ``gradient_batch``, of its gradient (``gradients/<path>``);
            ``0`` writes none; each epoch by default. A model that is not a
            Keras model (a toy task's) gets none.
        gradient_batch: ``(x, y)``, a small batch the gradients are computed
            on with the model in inference mode (no dropout, batch
            normalization with its moving statistics, so that measuring does
            not change the model).

    Raises:
        ValueError: a bad argument; the message names it.
    """

    def __init__(
        self,
        trial: TrialTracker,
        *,
        histogram_every: int = 1,
        gradient_batch: tuple[Any, Any] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(trial, TrialTracker):
            raise ValueError(f"trial: expected a TrialTracker, got {trial!r}")
        if (
            isinstance(histogram_every, bool)
            or not isinstance(histogram_every, int)
            or histogram_every < 0
        ):
            raise ValueError(f"histogram_every: expected an integer >= 0, got {histogram_every!r}")
        if gradient_batch is not None and (
            not isinstance(gradient_batch, (tuple, list)) or len(gradient_batch) != 2
        ):
            raise ValueError(
                f"gradient_batch: expected a pair (x, y) or None, got {gradient_batch!r}"
            )
        self.trial = trial
        self.histogram_every = histogram_every
        self.gradient_batch = gradient_batch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.trial.log_epoch(epoch, logs or {})
        if self._histograms_due(epoch):
            self.trial.log_histograms(epoch, self._histograms())

    def _histograms_due(self, epoch: int) -> bool:
        # A toy task trains a model of its own, not a Keras one: it has no layers to show.
        if self.histogram_every == 0 or not isinstance(self.model, keras.Model):
            return False
        last_epoch = self.params.get("epochs", 0) - 1 if self.params else -1
        return epoch % self.histogram_every == 0 or epoch == last_epoch

    def _histograms(self) -> dict[str, np.ndarray]:
        variables = self.model.trainable_variables
        tensors = {f"weights/{v.path}": keras.ops.convert_to_numpy(v) for v in variables}
        if self.gradient_batch is not None:
            x, y = self.gradient_batch
            with tf.GradientTape() as tape:
                y_pred = self.model(x, training=False)
                loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
            gradients = tape.gradient(loss, variables)
            for variable, gradient in zip(variables, gradients):
                # A variable the loss does not depend on has no gradient.
                if gradient is not None:
                    tensors[f"gradients/{variable.path}"] = keras.ops.convert_to_numpy(gradient)
        return tensors
