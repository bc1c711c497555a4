"""Letting TensorFlow free a fit's traced graphs once the fit is over.

Every time a training step is traced into a graph, ``tf.custom_gradient``
registers that call's gradient function in TensorFlow's process-wide gradient
registry, under a fresh name (``CustomGradient-<n>``), and never removes it.
Keras's TensorFlow optimizer passes the gradients through such a function
(``all_reduce`` of the default distribution strategy, even on one device), so
each ``model.fit`` and each toy-task fit leaves one or two of them behind. The
function's closure holds tensors of the traced graph, and through them the
whole graph, its branch graphs, its compiled functions and the model it
trained: about 4 MB per image trial of ``digits_mlp``, growing without end in
a study, which neither ``keras.backend.clear_session()`` nor the garbage
collector can release. (TensorFlow issues #27492 and #97697; the change that
stops the closure from holding the graph is not in TensorFlow 2.21.)

A registered gradient is looked up only while a graph containing its op is
differentiated, which happens while the step is traced, inside the fit. Once
the fit has returned, the entries it added serve no one, and dropping them
lets the garbage collector take the graphs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tensorflow.python.framework import ops as tf_ops

#: The prefix of the names ``tf.custom_gradient`` registers (``custom_gradient.generate_name``).
CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


@contextlib.contextmanager
def custom_gradients_released() -> Iterator[None]:
    """Drop, on leaving, the custom gradients registered while the block ran.

    A context manager, or a decorator of a function that fits (as
    ``Task.fit`` is decorated).

    Only names under :data:`CUSTOM_GRADIENT_PREFIX` that appeared during the
    block are removed; gradients registered before it, and TensorFlow's own
    per-op gradients, stay. Use it around code that traces and runs its
    graphs to the end (a whole fit), not around a trace whose graph is
    differentiated later. A thread tracing a graph with a custom gradient at
    the very moment the block ends would lose that gradient: gdbench fits run
    one at a time.

    Where TensorFlow's registry is not the dictionary this expects (another
    version), nothing is removed.
    """
    entries = _registered_gradients()
    before = set(entries) if entries is not None else set()
    try:
        yield
    finally:
        if entries is not None:
            for name in [name for name in list(entries)
                         if name.startswith(CUSTOM_GRADIENT_PREFIX) and name not in before]:
                entries.pop(name, None)


def _registered_gradients() -> dict[str, object] | None:
    # TensorFlow has no public way to unregister a gradient: its registry's
    # dictionary is the only handle.
    entries = getattr(getattr(tf_ops, "gradient_registry", None), "_registry", None)
    return entries if isinstance(entries, dict) else None
