"""Tiny models of both formats, built on the spot for ``hub-adapter matrix``.

Both compute ``y = x @ [[1], [2]] + 0.5`` for ``x`` of shape [batch, 2], so
every cell of the matrix can check a value, not just that nothing raised.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

INPUT = np.array([[1.0, 1.0], [2.0, -1.0]], dtype=np.float32)
EXPECTED = np.array([[3.5], [0.5]], dtype=np.float32)
TARGET = np.zeros_like(EXPECTED)
TF1_MODULE = "tf1_hub_module"


def tf2_model_dir(root: str, mode: str) -> str:
  """Where the TF2 SavedModel created in ``mode`` lives under ``root``."""
  return os.path.join(root, f"tf2_saved_model_{mode}")


def tiny_tf1_module_fn(training: bool = False) -> None:
  """``module_fn`` for ``create_module_spec``: one dense unit.

  Args:
    training: True for the ``{"train"}`` graph variant, which also registers
      an update op counting training steps, like batch norm would.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf1 import creation  # pylint: disable=g-import-not-at-top
  x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
  w = tf.compat.v1.get_variable(
      "w", initializer=tf.constant([[1.0], [2.0]]))
  b = tf.compat.v1.get_variable("b", initializer=tf.constant([0.5]))
  y = tf.matmul(x, w) + b
  # Both graph variants must hold the same variables; only the train variant
  # registers an update op, like batch norm's moving statistics.
  steps = tf.compat.v1.get_variable(
      "steps", initializer=tf.constant(0.0), trainable=False)
  if training:
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.UPDATE_OPS,
                                   tf.compat.v1.assign_add(steps, 1.0))
  creation.add_signature(inputs={"x": x}, outputs={"default": y})


def make_tf1_module(path: str) -> str:
  """Creates and exports the tiny TF1 Hub module.

  Works in TF1 compat mode and in an eager TF2 program (the way of
  tensorflow_hub 0.15: the spec builds graphs of its own, and the Module is
  made and exported inside a graph block).

  Args:
    path: The folder to export to.

  Returns:
    ``path``.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf1 import creation  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf1 import module as module_lib  # pylint: disable=g-import-not-at-top
  spec = creation.create_module_spec(
      tiny_tf1_module_fn,
      tags_and_args=[({"train"}, {"training": True}), (set(), {})])
  with tf.Graph().as_default():
    module = module_lib.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      module.export(path, session)
  return path


def _tiny_tf2_class():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  class TinyDense(tf.Module):
    """``y = x @ w + b`` with a ``__call__`` and a serving signature."""

    def __init__(self):
      super().__init__()
      self.w = tf.Variable([[1.0], [2.0]], name="w")
      self.b = tf.Variable([0.5], name="b")

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def __call__(self, x):
      return tf.matmul(x, self.w) + self.b

  return TinyDense


def save_tf2_saved_model(build: Callable[[], Any], path: str) -> str:
  """Builds a trackable with ``build()`` and saves it with ``hub_adapter.save``.

  Works in TF2 and in TF1 compat mode (where the object is built in a graph
  of its own and its variables are initialized in a session first).

  Args:
    build: Returns the ``tf.Module`` (or other trackable) to save.
    path: The folder to save to.

  Returns:
    ``path``.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf2 import creation  # pylint: disable=g-import-not-at-top
  if tf.executing_eagerly():
    creation.save(build(), path)
    return path
  with tf.Graph().as_default(), tf.compat.v1.Session() as session:
    obj = build()
    session.run(tf.compat.v1.global_variables_initializer())
    creation.save(obj, path)
  return path


def make_tf2_saved_model(path: str) -> str:
  """Creates the tiny TF2 SavedModel with ``hub_adapter.save``, in either
  mode (see :func:`save_tf2_saved_model`).

  Args:
    path: The folder to save to.

  Returns:
    ``path``.
  """
  return save_tf2_saved_model(_tiny_tf2_class(), path)
