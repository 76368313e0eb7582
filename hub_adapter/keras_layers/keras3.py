"""What ``KerasLayer`` does differently under Keras 3.

- Weights: each of the model's ``tf.Variable`` s is wrapped in a
  ``keras.Variable`` built *on* it (Keras 3's TensorFlow backend keeps a
  ``tf.Variable`` initializer as the variable's value instead of copying it),
  so optimizer updates, ``.keras`` weight files and ``model.export()`` all
  act on the model's own variables.
- Losses: Keras 3 has no callable losses; while the layer is trainable each
  call adds the model's regularization losses with ``add_loss``, so they are
  in ``model.losses`` (and in ``fit``'s loss) after a forward pass.
- Symbolic calls (functional models): the output spec is found by tracing
  the model's call on ``tf.TensorSpec`` s of the symbolic inputs.
- Safe mode: ``keras.models.load_model(..., safe_mode=True)`` (the default)
  makes ``from_config`` reload the model with ``load(..., safe=True)``.

Only :mod:`hub_adapter.keras_layers.flavours` imports this module.
"""
from __future__ import annotations

from typing import Any, List

import keras
import tensorflow as tf

from hub_adapter import errors
from hub_adapter.keras_layers import shapes


def _weight_name(variable: Any) -> str:
  """A Keras 3 variable name (no ``/``, no ``:0``) for a ``tf.Variable``."""
  name = getattr(variable, "name", None) or "variable"
  if name.endswith(":0"):
    name = name[:-2]
  return name.replace("/", "_")


def _input_spec(tensor: Any) -> Any:
  """The ``tf.TypeSpec`` of a symbolic input: sparse and ragged ones (from
  ``keras.Input(sparse=True)`` / ``ragged=True``) keep their kind, so TF1
  signatures declaring them trace."""
  dtype = tf.as_dtype(tensor.dtype)
  if getattr(tensor, "sparse", False):
    return tf.SparseTensorSpec(tensor.shape, dtype)
  if getattr(tensor, "ragged", False):
    return tf.RaggedTensorSpec(tensor.shape, dtype,
                               ragged_rank=len(tensor.shape) - 1)
  return tf.TensorSpec(tensor.shape, dtype)


class Behaviour:
  """Keras 3 hooks of ``hub_adapter.KerasLayer`` (see the module doc)."""

  def _hub_track_variables(self, trainable_vars: List[Any],
                           other_vars: List[Any]) -> None:
    for variables, trainable in ((trainable_vars, True), (other_vars, False)):
      for variable in variables:
        wrapped = keras.Variable(
            initializer=variable, shape=variable.shape, dtype=variable.dtype,
            trainable=trainable, autocast=False,
            name=_weight_name(variable))
        self._track_variable(wrapped)

  def _hub_init_losses(self, losses: List[Any]) -> None:
    object.__setattr__(self, "_hub_losses", list(losses))

  def _hub_training_flag(self, training: Any) -> Any:
    if not self.trainable or training is None:
      return False
    return training

  def _hub_after_call(self, training: Any) -> None:
    del training  # Regularization losses count in training and evaluation.
    if not self.trainable:
      return
    for loss in self._hub_losses:
      self.add_loss(loss() if callable(loss) else loss)

  def compute_output_spec(self, inputs, training=None):
    """Traces the model's call on the symbolic inputs' specs."""
    del training
    specs = tf.nest.map_structure(_input_spec, inputs)
    forward = tf.function(lambda x: self._hub_forward(x, False),
                          autograph=False)
    outputs = forward.get_concrete_function(specs).structured_outputs
    return tf.nest.map_structure(self._hub_keras_tensor, outputs)

  def _hub_keras_tensor(self, tensor: Any) -> Any:
    if tensor.shape.rank is None:
      raise errors.InputError(errors.compose(
          f"KerasLayer({self._hub_handle!r}) cannot tell the rank of its "
          "output: the model's function does not record it.",
          "Keras 3 needs every symbolic tensor's rank.",
          "Pass output_shape= (without the batch dimension), e.g. "
          "KerasLayer(handle, output_shape=[8])."), handle=self._hub_handle)
    return keras.KerasTensor(
        tuple(tensor.shape.as_list()), dtype=tensor.dtype.name,
        sparse=isinstance(tensor, tf.SparseTensor),
        ragged=isinstance(tensor, tf.RaggedTensor))

  def _hub_infer_output_shape(self, input_shape: Any) -> Any:
    dtypes = self._hub_input_dtypes()

    def symbolic(shape, name=None):
      dtype = dtypes.get(name) if name is not None else None
      if dtype is None:
        dtype = next(iter(dtypes.values())) if len(dtypes) == 1 else "float32"
      return keras.KerasTensor(tuple(shape), dtype=dtype)

    if isinstance(input_shape, dict):
      inputs = {k: symbolic(v, k) for k, v in input_shape.items()}
    elif shapes.is_shape(input_shape):
      inputs = symbolic(input_shape)
    else:
      inputs = [symbolic(s) for s in input_shape]
    spec = self.compute_output_spec(inputs)
    return tf.nest.map_structure(lambda t: tuple(t.shape), spec)

  def _hub_input_dtypes(self) -> dict:
    """Input dtypes by name (one entry, keyed None, for ``__call__``)."""
    model = self._hub_model
    if model.signature is not None:
      inputs = model.info.signatures_for(model.tags)[model.signature].inputs
      return {k: v.dtype for k, v in inputs.items()
              if k not in self._hub_arguments}
    functions = getattr(getattr(model.raw, "__call__", None),
                        "concrete_functions", None) or []
    for function in functions:
      args = function.structured_input_signature[0]
      if args and isinstance(args[0], tf.TensorSpec):
        return {None: args[0].dtype.name}
    return {}

  @classmethod
  def _hub_keras_safe_mode(cls) -> bool:
    try:
      from keras.src.saving import serialization_lib  # pylint: disable=g-import-not-at-top
    except ImportError:
      return False
    return serialization_lib.in_safe_mode() is True
