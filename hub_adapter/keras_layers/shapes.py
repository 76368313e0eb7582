"""``output_shape`` of :class:`hub_adapter.KerasLayer`: nests of shapes.

A user writes ``output_shape`` without the batch dimension, as one shape
(``[8]``, ``(None, 4)``) or as a dict/list/tuple of shapes that mirrors the
layer's outputs. A shape is a list or tuple whose items are all ints or
None (or a ``tf.TensorShape``); any other list or tuple is a container.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Optional, Tuple

from hub_adapter import errors

Shape = Tuple[Optional[int], ...]


def is_shape(value: Any) -> bool:
  """True for a shape: a list/tuple of ints or None, or a TensorShape."""
  if hasattr(value, "as_list") and hasattr(value, "rank"):
    return True
  return isinstance(value, (list, tuple)) and all(
      d is None or (isinstance(d, int) and not isinstance(d, bool))
      for d in value)


def _as_tuple(value: Any) -> Shape:
  if hasattr(value, "as_list"):
    return tuple(value.as_list())
  return tuple(None if d is None else int(d) for d in value)


def normalize(output_shape: Any) -> Any:
  """Turns every shape of a nest into a tuple; containers keep their type.

  Args:
    output_shape: One shape or a dict/list/tuple nest of shapes, or None.

  Returns:
    The same nest with tuples of int/None as leaves (dicts become plain
    dicts, lists stay lists), or None.

  Raises:
    InputError: a leaf is neither a shape nor a container of shapes.
  """
  if output_shape is None:
    return None
  if is_shape(output_shape):
    return _as_tuple(output_shape)
  if isinstance(output_shape, dict):
    return {k: normalize(v) for k, v in output_shape.items()}
  if isinstance(output_shape, (list, tuple)):
    return type(output_shape)(normalize(v) for v in output_shape)
  raise errors.InputError(errors.compose(
      f"output_shape={output_shape!r} is not a shape.",
      "output_shape gives each output's shape without the batch dimension.",
      "Pass a list/tuple of ints or None (e.g. [8]), or a dict/list of them "
      "that mirrors the layer's outputs."), output_shape=output_shape)


def map_shapes(fn: Callable[[Shape], Any], nest: Any) -> Any:
  """Applies ``fn`` to each shape of a normalized nest."""
  if isinstance(nest, tuple) and is_shape(nest):
    return fn(nest)
  if isinstance(nest, dict):
    return {k: map_shapes(fn, v) for k, v in nest.items()}
  if isinstance(nest, (list, tuple)):
    return type(nest)(map_shapes(fn, v) for v in nest)
  return fn(tuple(nest))


def with_batch(nest: Any, batch: Optional[int]) -> Any:
  """Prepends the batch dimension to every shape of a normalized nest."""
  return map_shapes(lambda s: (batch,) + tuple(s), nest)


def first_batch_dim(input_shape: Any) -> Optional[int]:
  """The batch dimension of the first shape in an input-shape nest."""
  if is_shape(input_shape):
    dims = _as_tuple(input_shape)
    return dims[0] if dims else None
  if isinstance(input_shape, dict):
    for key in sorted(input_shape):
      return first_batch_dim(input_shape[key])
  if isinstance(input_shape, (list, tuple)) and input_shape:
    return first_batch_dim(input_shape[0])
  return None


def to_config(nest: Any) -> Any:
  """A JSON-ready copy of a normalized nest (tuples become lists).

  Raises:
    InputError: the nest cannot be written as JSON.
  """
  if nest is None:
    return None
  value = map_shapes(list, nest)
  try:
    json.dumps(value)
  except TypeError as e:
    raise errors.InputError(errors.compose(
        f"output_shape={nest!r} cannot be saved in the layer's config.",
        str(e), "Use ints, None, lists and dicts with string keys only."),
        output_shape=nest) from None
  return value
