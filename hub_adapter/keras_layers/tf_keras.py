"""What ``KerasLayer`` does differently under Keras 2.

Keras 2 is ``tf_keras`` on TF >= 2.16 (``TF_USE_LEGACY_KERAS=1``, or any
Keras work in TF1 compat mode) and ``tf.keras`` on TF 2.15.

- Weights: ``add_weight(getter=...)`` registers each of the model's own
  ``tf.Variable`` s as a weight without creating a new one.
- Losses: the model's regularization losses are added once, as callables
  that return the loss while the layer is trainable (0 otherwise), so
  ``model.losses`` always shows their current values.
- Training: ``training=None`` means Keras' learning phase, which in TF1
  compat mode is a tensor; the model then branches with ``tf.cond``.
- Graph mode (TF1 compat): TensorFlow rewrites a restored function's call op
  in place (it adds outputs) the first time a gradient is taken through it.
  Keras runs its session before it builds the training function, and a
  session never sees later edits of ops it already ran, so the layer takes
  that gradient once right after each call, before any session runs. Update
  ops the model reports (TF1 Hub modules) are added with ``add_update``.

Only :mod:`hub_adapter.keras_layers.flavours` imports this module.
"""
from __future__ import annotations

import functools
import importlib
from typing import Any, List

import tensorflow as tf

from hub_adapter import runtime
from hub_adapter.keras_layer import KerasLayer
from hub_adapter.keras_layers import shapes
from hub_adapter.support import Format

_KERAS = runtime.keras_module(runtime.TF_KERAS)


def _weight_name(variable: Any) -> str:
  name = getattr(variable, "name", None) or "variable"
  return name[:-2] if name.endswith(":0") else name


def _prepare_gradients(tensors: Any, variables: List[Any]) -> None:
  """Takes a throw-away gradient so restored call ops are rewritten now."""
  if tf.compat.v1.executing_eagerly_outside_functions() or not variables:
    return
  flat = [t for t in tf.nest.flatten(tensors)
          if isinstance(t, tf.Tensor) and t.dtype.is_floating]
  if flat:
    tf.compat.v1.gradients(flat, variables)


class Behaviour:
  """Keras 2 hooks of ``hub_adapter.KerasLayer`` (see the module doc)."""

  def _hub_track_variables(self, trainable_vars: List[Any],
                           other_vars: List[Any]) -> None:
    for variables, trainable in ((trainable_vars, True), (other_vars, False)):
      for variable in variables:
        self.add_weight(
            name=_weight_name(variable), shape=variable.shape,
            dtype=variable.dtype, trainable=trainable,
            experimental_autocast=False,
            getter=functools.partial(_existing, variable))
    object.__setattr__(self, "_hub_update_ops_added", set())

  def _hub_init_losses(self, losses: List[Any]) -> None:
    for loss in losses:
      self.add_loss(functools.partial(self._hub_loss_if_trainable, loss))

  def _hub_loss_if_trainable(self, loss: Any) -> Any:
    if not self.trainable:
      return tf.constant(0.0)
    value = loss() if callable(loss) else loss
    _prepare_gradients(value, self.trainable_weights)
    return value

  def _hub_training_flag(self, training: Any) -> Any:
    if not self.trainable:
      return False
    if training is None:
      training = _KERAS.backend.learning_phase()
    if isinstance(training, int):
      training = bool(training)
    return training

  def _hub_forward(self, inputs: Any, training: Any) -> Any:
    if self._hub_model.format is Format.TF1_HUB and isinstance(
        training, tf.Tensor):
      return self._hub_forward_both_variants(inputs, training)
    result = super()._hub_forward(inputs, training)
    if self.trainable and self._hub_model.format is Format.TF2_SAVED_MODEL:
      _prepare_gradients(result, self.trainable_weights)
    return result

  def _hub_forward_both_variants(self, inputs: Any, training: Any) -> Any:
    """A TF1 Hub module under Keras' symbolic learning phase (graph mode).

    The module's graph variants are imported once each, outside any
    ``tf.cond`` (graph import does not belong in a branch), and the
    learning phase picks which result flows on. The training variant's
    update ops reach Keras through ``add_update``, which only the training
    function runs.
    """
    on = self._hub_forward(inputs, True)
    off = self._hub_forward(inputs, False)
    return tf.nest.map_structure(
        lambda a, b: tf.cond(training, lambda: a, lambda: b), on, off)

  def _hub_after_call(self, training: Any) -> None:
    del training
    if tf.compat.v1.executing_eagerly_outside_functions():
      return
    added = self._hub_update_ops_added
    new = [op for op in self._hub_model.update_ops if id(op) not in added]
    if new and self.trainable:
      added.update(id(op) for op in new)
      self.add_update(new)

  def _hub_shape_result(self, nest: Any) -> Any:
    return shapes.map_shapes(tf.TensorShape, nest)

  def _hub_infer_output_shape(self, input_shape: Any) -> Any:
    # Keras' own implementation (it traces call()), past KerasLayer's.
    return super(KerasLayer, self).compute_output_shape(input_shape)  # pylint: disable=bad-super-call

  @classmethod
  def _hub_keras_safe_mode(cls) -> bool:
    name = "tf_keras" if _KERAS.__name__.startswith("tf_keras") else "keras"
    try:
      module = importlib.import_module(f"{name}.src.saving.serialization_lib")
    except ImportError:
      return False
    return module.in_safe_mode() is True


def _existing(variable: Any, *args: Any, **kwargs: Any) -> Any:
  del args, kwargs
  return variable
