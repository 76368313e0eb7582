"""Loaded models as trackable objects: what saving and checkpoints see.

``hub.load`` returns the object ``tf.saved_model.load`` made, which
``tf.saved_model.save``, ``tf.train.Checkpoint`` and ``tf.Module`` attribute
tracking all accept. :class:`TrackableModel` gives ``hub_adapter.load``'s
result the same standing: it is an ``AutoTrackable`` whose children are
those of the object it wraps, so

- ``tf.saved_model.save(hub_adapter.load(handle), path)`` writes what
  saving ``hub.load(handle)`` writes;
- a ``tf.Module`` (or Keras model) holding a loaded model saves with its own
  signatures: the functions it traces capture the model's variables, tables
  and assets, and those are reachable from the root through the model;
- ``tf.train.Checkpoint(model=hub_adapter.load(handle))`` checkpoints the
  model's variables under the names ``hub.load``'s object would give them.

For a TF1 Hub module loaded in TF2 the children are a stand-in rather than
the loaded object: that object also lists graph-side handles of
partitioned variables from the graph it was imported from, which cannot be
saved (:func:`saveable`).

This module imports TensorFlow; only the TF2 backends import it.
"""
from __future__ import annotations

from typing import Any, List

import tensorflow as tf

from hub_adapter.model import Model

_AutoTrackable = tf.__internal__.tracking.AutoTrackable


def _graph_side(variable: Any) -> bool:
  try:
    handle = variable.handle
  except (AttributeError, ValueError):  # Distributed variables, in scope.
    return False
  return tf.is_symbolic_tensor(handle)


def live(variables: List[Any]) -> List[Any]:
  """Drops duplicates and, in TF2, variables of a graph that is gone.

  ``tf.saved_model.load`` of a TF1 Hub module lists, next to the eager
  variables, the graph-side handles of partitioned variables from the
  function graph it imported; they cannot be read or saved.

  Args:
    variables: Variables, in order.

  Returns:
    The usable ones, in the same order.
  """
  eager = tf.compat.v1.executing_eagerly_outside_functions()
  kept, seen = [], set()
  for variable in variables:
    if id(variable) in seen:
      continue
    seen.add(id(variable))
    if eager and _graph_side(variable):
      continue
    kept.append(variable)
  return kept


def saveable(model: Any) -> Any:
  """The trackable that holds a loaded model's state for saving.

  Args:
    model: A :class:`hub_adapter.Model`.

  Returns:
    ``model.saveable_state()``: what its backend says holds its state.
  """
  return model.saveable_state()


def tf1_module_holder(model: Any) -> Any:
  """The state of a TF1 Hub module loaded by ``tf.saved_model.load``.

  Its object is not savable as it is (its variables live in a wrapped
  graph), so this is a ``tf.Module`` holding its live variables,
  signatures, initializer and asset paths, made once per model.

  Args:
    model: A :class:`hub_adapter.Model` whose ``raw`` is such an object.

  Returns:
    The holder (``model.raw`` itself if it has no signatures).
  """
  raw = model.raw
  if not hasattr(raw, "signatures"):
    return raw
  holder = model.__dict__.get("_hub_saveable")
  if holder is None:
    holder = tf.Module(name="tf1_hub_module")
    for name in ("signatures", "initializer", "asset_paths"):
      if hasattr(raw, name):
        setattr(holder, name, getattr(raw, name))
    holder.module_variables = live(list(getattr(raw, "variables", ())))
    object.__setattr__(model, "_hub_saveable", holder)
  return holder


class TrackableModel(Model, _AutoTrackable):
  """A :class:`hub_adapter.Model` that TensorFlow can save and checkpoint.

  Its trackable children are those of :func:`saveable`; attributes set on
  it are not tracked (the wrapper itself holds no state of its own).
  """

  def __init__(self, request: Any, raw: Any):
    # Plain attributes: only the children below are what gets saved.
    self._maybe_initialize_trackable()
    object.__setattr__(self, "_self_setattr_tracking", False)
    super().__init__(request, raw)

  def _trackable_children(self, save_type="checkpoint", **kwargs):  # pylint: disable=arguments-differ
    return saveable(self)._trackable_children(save_type, **kwargs)  # pylint: disable=protected-access


def save_signatures(model: Any) -> Any:
  """The signatures ``hub_adapter.save(model, path)`` writes by default.

  Args:
    model: A loaded :class:`TrackableModel`.

  Returns:
    Its signatures as a dict (``tf.saved_model.save`` re-exports a loaded
    object's signatures only when asked), or None when it has none.
  """
  signatures = getattr(model.raw, "signatures", None)
  return dict(signatures) if signatures else None


__all__ = ["TrackableModel", "saveable", "live", "save_signatures"]
