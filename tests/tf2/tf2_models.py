"""A tiny TF2 SavedModel for the tf2 backend tests (dict outputs, a
``training`` argument, no ``variables`` attribute), saved the way
:mod:`hub_adapter.tiny_models` saves the matrix's models, into temporary
folders (never into the repository)."""
import numpy as np

from hub_adapter import tiny_models

INPUT = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
W = np.array([[1.0], [2.0]], np.float32)
B = np.array([0.5], np.float32)


def _build():
  """A plain tf.Module: no ``variables`` attribute is saved, so loaders must
  find the variables by walking the object graph. ``__call__`` takes
  ``training`` and returns a dict; ``training=True`` counts its calls in a
  non-trainable variable."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  class Tiny(tf.Module):

    def __init__(self):
      super().__init__()
      self.w = tf.Variable(W, name="w")
      self.b = tf.Variable(B, name="b")
      self.calls = tf.Variable(0.0, trainable=False, name="calls")

    @tf.function
    def __call__(self, x, training=False):
      if training:
        self.calls.assign_add(1.0)
      y = tf.matmul(x, self.w) + self.b
      return {"y": y, "double": 2.0 * y}

  obj = Tiny()
  spec = tf.TensorSpec([None, 2], tf.float32)
  obj.__call__.get_concrete_function(spec, training=True)
  obj.__call__.get_concrete_function(spec, training=False)
  return obj


def make_tiny(path: str) -> str:
  """Saves the tiny module to ``path`` in the running mode; returns it."""
  return tiny_models.save_tf2_saved_model(_build, path)


def expected_y(x=INPUT, w=W, b=B) -> np.ndarray:
  return x @ w + b
