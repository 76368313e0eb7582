"""What is running: TensorFlow version, mode, Keras flavour, Estimator.

Nothing here imports TensorFlow at module import time; each function imports
it when called.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from typing import Any, Tuple

from hub_adapter import errors
from hub_adapter.support import Mode

KERAS3 = "keras3"
TF_KERAS = "tf_keras"


def tf():
  """Returns the ``tensorflow`` module, imported on first use."""
  import tensorflow  # pylint: disable=g-import-not-at-top
  return tensorflow


@functools.lru_cache(maxsize=None)
def tf_version() -> Tuple[int, int]:
  """Returns TensorFlow's (major, minor) version."""
  major, minor = tf().__version__.split(".")[:2]
  return int(major), int(minor)


def current_mode() -> Mode:
  """Returns the mode code runs in right now.

  TF2 covers eager execution and ``tf.function`` tracing (whose outer context
  is eager). TF1 compat mode covers ``disable_v2_behavior()`` and building a
  plain ``tf.Graph`` under ``as_default()``, where a Session runs the graph.

  Returns:
    ``Mode.TF2`` or ``Mode.TF1_COMPAT``.
  """
  if tf().compat.v1.executing_eagerly_outside_functions():
    return Mode.TF2
  return Mode.TF1_COMPAT


def legacy_keras_requested() -> bool:
  """True when ``TF_USE_LEGACY_KERAS`` asks ``tf.keras`` to be tf_keras."""
  return os.environ.get("TF_USE_LEGACY_KERAS", "").lower() in ("1", "true")


def keras_flavour() -> str:
  """Returns the Keras flavour that a Keras layer must belong to right now.

  ``KERAS3`` on TF >= 2.16 in TF2 mode unless ``TF_USE_LEGACY_KERAS=1``;
  ``TF_KERAS`` otherwise (TF 2.15's Keras 2, tf_keras, and any Keras work in
  TF1 compat mode, which Keras 3 cannot run).
  """
  if tf_version() < (2, 16) or legacy_keras_requested():
    return TF_KERAS
  if current_mode() is Mode.TF1_COMPAT:
    return TF_KERAS
  return KERAS3


def keras_module(flavour: str | None = None) -> Any:
  """Returns the Keras module for a flavour (default: the current one).

  Args:
    flavour: ``KERAS3`` or ``TF_KERAS``.

  Returns:
    ``keras`` (Keras 3), ``tf_keras``, or TF 2.15's ``tf.keras``.

  Raises:
    BackendUnavailableError: the package for that flavour is not installed.
  """
  flavour = flavour or keras_flavour()
  if flavour == KERAS3:
    import keras  # pylint: disable=g-import-not-at-top
    return keras
  if tf_version() < (2, 16):
    return tf().keras
  try:
    return importlib.import_module("tf_keras")
  except ImportError as e:
    raise errors.BackendUnavailableError(errors.compose(
        "Keras 2 (tf_keras) is needed here but is not installed.",
        "Keras 3 cannot run in TF1 compat mode or with "
        "TF_USE_LEGACY_KERAS=1.",
        f"pip install 'tf-keras~={tf_version()[0]}.{tf_version()[1]}.0'")) from e


def has_estimator() -> bool:
  """True when ``tf.estimator`` can be used (TF <= 2.15 with the package)."""
  if tf_version() >= (2, 16):
    return False
  return importlib.util.find_spec("tensorflow_estimator") is not None


def describe() -> dict:
  """Returns a summary of the running stack, for error messages and the CLI."""
  return {
      "tensorflow": tf().__version__,
      "mode": current_mode().value,
      "keras": keras_flavour(),
      "estimator": has_estimator(),
  }
