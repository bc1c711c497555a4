"""The compiled program of an image population: K MLPs stacked on a leading member axis.

:mod:`gdbench.tasks.image_population` trains with it; see there for what each
member computes. A model qualifies when it is a ``Sequential`` of ``Flatten``
and ``Dense`` layers on flat features (:func:`architecture_of`). Its K
members' kernels are ``[K, in, out]``, their biases ``[K, out]``; programs are
kept per configuration (layers, optimizer, schedule, shared keywords, dtype),
so that populations of the same configuration compile once.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import keras
import tensorflow as tf

from gdbench.optimizers import RuleOptimizer
from gdbench.schedules import RateSchedule

#: Programs kept for reuse.
_CACHE_SIZE = 16


@dataclasses.dataclass(frozen=True)
class StackedDense:
    """One ``Dense`` layer as the population computes it; hashable, part of the cache key."""

    activation: Callable[[Any], Any]
    use_bias: bool


_UNSUPPORTED_DENSE = ("kernel_regularizer", "bias_regularizer", "activity_regularizer",
                      "kernel_constraint", "bias_constraint")


def architecture_of(model: keras.Model) -> tuple[StackedDense, ...] | None:
    """The model's ``Dense`` layers, or ``None`` when it is not Flatten/Dense on flat features."""
    if not isinstance(model, keras.Sequential) or model.losses:
        return None
    flat = len(model.input_shape) == 2
    layers = []
    for layer in model.layers:
        if type(layer) is keras.layers.Flatten:
            flat = True
        elif (type(layer) is keras.layers.Dense and flat and not layer.lora_enabled
              and layer.quantization_mode is None
              and all(getattr(layer, name) is None for name in _UNSUPPORTED_DENSE)):
            layers.append(StackedDense(layer.activation, layer.use_bias))
        else:
            return None
    return tuple(layers) or None


@dataclasses.dataclass(frozen=True)
class Program:
    """The compiled functions of one configuration (see :func:`_build_program`)."""

    train_epoch: Callable[..., Any]
    evaluate_split: Callable[..., Any]

    def evaluate(self, weights: tuple[tf.Variable, ...], batches: tf.data.Dataset, steps: int, *,
                 prefix: str) -> dict[str, tf.Tensor]:
        """Each member's ``{prefix}loss`` and ``{prefix}accuracy`` [K] on a split's batches."""
        loss, accuracy = self.evaluate_split(weights, iter(batches), tf.constant(steps))
        return {f"{prefix}accuracy": accuracy, f"{prefix}loss": loss}


_COMPILED: collections.OrderedDict[tuple[Any, ...], Program] = collections.OrderedDict()


def compiled_program(
    architecture: tuple[StackedDense, ...], optimizer_class: type[RuleOptimizer],
    schedule_class: type[RateSchedule] | None, rule_static: Mapping[str, Any],
    rate_static: Mapping[str, Any], dtype: str, jit_compile: bool,
) -> Program:
    """The program for this configuration, built once and kept for reuse."""
    key = (architecture, optimizer_class, schedule_class, tuple(sorted(rule_static.items())),
           tuple(sorted(rate_static.items())), dtype, jit_compile)
    program = _COMPILED.get(key)
    if program is None:
        program = _build_program(architecture, optimizer_class, schedule_class,
                                 dict(rule_static), dict(rate_static), dtype, jit_compile)
        _COMPILED[key] = program
        while len(_COMPILED) > _CACHE_SIZE:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(key)
    return program


def _build_program(
    architecture: tuple[StackedDense, ...], optimizer_class: type[RuleOptimizer],
    schedule_class: type[RateSchedule] | None, rule_static: dict[str, Any],
    rate_static: dict[str, Any], dtype: str, jit_compile: bool,
) -> Program:
    """``train_epoch`` (one epoch of steps) and ``evaluate_split`` (loss and accuracy)."""
    rule = optimizer_class.rule

    def logits_of(weights: tuple[tf.Tensor, ...], images: tf.Tensor) -> tf.Tensor:
        features = tf.reshape(tf.cast(images, dtype), [tf.shape(images)[0], -1])
        position = 0
        for layer in architecture:
            # The first layer's input [B, in] is the same batch for every
            # member: the batched matmul broadcasts it and reads the kernels
            # [K, in, out] where they lie, forward and backward (an einsum
            # made transposed copies of them).
            features = tf.matmul(features, weights[position])
            if layer.use_bias:
                features = features + weights[position + 1][:, tf.newaxis, :]
            position += 2 if layer.use_bias else 1
            features = layer.activation(features)
        return features

    def mean_losses(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Each member's mean loss on the batch, [K], as Keras's ``sum_over_batch_size``."""
        labels = tf.broadcast_to(tf.cast(labels, tf.int64)[tf.newaxis], tf.shape(logits)[:2])
        losses = keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        return tf.reduce_sum(losses, axis=1) / tf.cast(tf.shape(labels)[1], dtype)

    def correct_predictions(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Each member's number of correct predictions on the batch, [K].

        TensorFlow's argmax, as Keras's: on a diverging member's non-finite
        logits XLA's picks other classes.
        """
        matches = tf.equal(tf.cast(labels, tf.int64)[tf.newaxis], tf.argmax(logits, axis=-1))
        return tf.reduce_sum(tf.cast(matches, dtype), axis=1)

    def learning_rate_at(step: tf.Tensor, rate_inputs: dict[str, Any]) -> tf.Tensor:
        """η [K, 1] in float64 at the 0-based iteration count ``step`` (scalar or [K, 1])."""
        if schedule_class is None:
            return rate_inputs["learning_rate"]
        return schedule_class.rate_function(tf.cast(step, tf.float64), **rate_inputs,
                                            **rate_static)

    def gradients_of(weights, images, labels):
        """Each member's gradients, mean losses [K] and logits on one batch."""
        with tf.GradientTape() as tape:
            tape.watch(weights)
            logits = logits_of(weights, images)
            losses = mean_losses(logits, labels)
            # Member k's loss depends on member k's weights alone: the gradient
            # of the sum is each member's own.
            total = tf.reduce_sum(losses)
        return tape.gradient(total, weights), losses, logits

    # No AutoGraph (the loops are tf.while_loop): converting these functions
    # and every function they call took longer than tracing them.
    # Only the rules go through XLA, where fusing their element-wise steps
    # pays; on a CPU, XLA's batched matmuls are slower than TensorFlow's.
    @tf.function(jit_compile=jit_compile, autograph=False)
    def apply_rules(weights, gradients, slots, active, iteration, rule_inputs, rate_inputs):
        """Every active member's weights and slots after one step, assigned in place.

        The weights and slots are variables: under XLA their buffers are
        updated where they lie, so that a step holds one copy of them (and the
        gradients), not the old and the new side by side. (Updating each layer
        as soon as its gradients exist, one call per layer, saved no memory
        under TensorFlow's default CPU allocator: ``benchmarks/RESULTS.md``.)
        """
        learning_rate = learning_rate_at(iteration, rate_inputs)
        step = tf.cast(iteration + 1, dtype)
        for weight, gradient, slot in zip(weights, gradients, slots):
            rank = weight.shape.rank

            def shaped(column: tf.Tensor, rank: int = rank) -> tf.Tensor:
                return tf.cast(tf.reshape(column, [-1] + [1] * (rank - 1)), dtype)

            old = weight.read_value()
            old_slots = tuple(variable.read_value() for variable in slot)
            value, slot_values = rule(
                old, gradient, old_slots, step=step, learning_rate=shaped(learning_rate),
                **{name: shaped(column) for name, column in rule_inputs.items()}, **rule_static,
            )
            member_active = tf.reshape(active, [-1] + [1] * (rank - 1))
            weight.assign(tf.where(member_active, value, old))
            for variable, new, previous in zip(slot, slot_values, old_slots):
                variable.assign(tf.where(member_active, new, previous))
        return iteration + 1

    @tf.function(autograph=False)
    def train_epoch(weights, slots, iterations, active, first_iteration, rule_inputs,
                    rate_inputs, batches, steps):
        """One epoch of steps, the variables ``weights`` and ``slots`` updated in place."""
        zeros = tf.zeros(tf.shape(active), dtype)

        def step(index, iterations, active, iteration, loss_sum, correct_sum, count):
            images, labels = next(batches)
            gradients, losses, logits = gradients_of(
                tuple(weight.read_value() for weight in weights), images, labels)
            # Returned by the update, the next count orders the next step after it.
            next_iteration = apply_rules(weights, gradients, slots, active, iteration,
                                         rule_inputs, rate_inputs)
            # Keras's running means: Σ batch loss · B / Σ B and Σ correct / Σ B.
            examples = tf.cast(tf.shape(labels)[0], dtype)
            loss_sum = tf.where(active, loss_sum + losses * examples, loss_sum)
            correct_sum = tf.where(active, correct_sum + correct_predictions(logits, labels),
                                   correct_sum)
            count = tf.where(active, count + examples, count)
            iterations += tf.cast(active, tf.int64)
            # Keras's TerminateOnNaN: the running loss after the batch, its update made.
            active = tf.logical_and(active, tf.math.is_finite(loss_sum / count))
            return (index + 1, iterations, active, next_iteration, loss_sum, correct_sum,
                    count)

        _, iterations, active, _, loss_sum, correct_sum, count = tf.while_loop(
            lambda index, *_: index < steps, step,
            (tf.constant(0, steps.dtype), iterations, active, first_iteration,
             zeros, zeros, zeros), parallel_iterations=1)
        # η where each member stopped (a constant η is already [K, 1]).
        rates = learning_rate_at(iterations[:, tf.newaxis], rate_inputs)
        rates = tf.broadcast_to(rates, tf.shape(iterations[:, tf.newaxis]))[:, 0]
        logs = {"accuracy": correct_sum / count, "loss": loss_sum / count, "learning_rate": rates}
        return iterations, active, logs

    @tf.function(autograph=False)
    def evaluate_split(weights, batches, steps):
        zeros = tf.zeros([tf.shape(weights[0])[0]], dtype)

        def step(index, loss_sum, correct_sum, count):
            images, labels = next(batches)
            logits = logits_of(weights, images)
            examples = tf.cast(tf.shape(labels)[0], dtype)
            return (index + 1, loss_sum + mean_losses(logits, labels) * examples,
                    correct_sum + correct_predictions(logits, labels), count + examples)

        _, loss_sum, correct_sum, count = tf.while_loop(
            lambda index, *_: index < steps, step,
            (tf.constant(0, steps.dtype), zeros, zeros, zeros))
        return loss_sum / count, correct_sum / count

    return Program(train_epoch, evaluate_split)
