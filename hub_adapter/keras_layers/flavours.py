"""One concrete ``KerasLayer`` class per Keras flavour, built on first use.

``layer_class()`` returns ``type("KerasLayer", (Behaviour, KerasLayer,
keras.layers.Layer), ...)`` for the flavour running now, where ``Behaviour``
comes from :mod:`~hub_adapter.keras_layers.keras3` (Keras 3, TensorFlow
backend), :mod:`~hub_adapter.keras_layers.jax_backend` (Keras 3, JAX
backend), :mod:`~hub_adapter.keras_layers.other_backends` (other Keras 3
backends: refused at construction) or
:mod:`~hub_adapter.keras_layers.tf_keras`. Each class is built once per
process and registered for deserialization in its Keras as
``"hub_adapter>KerasLayer"``.
"""
from __future__ import annotations

import importlib
import threading
from typing import Any, Dict, Optional

from hub_adapter import runtime

PACKAGE = "hub_adapter"
NAME = "KerasLayer"
REGISTERED_NAME = f"{PACKAGE}>{NAME}"

_BEHAVIOURS = {
    runtime.KERAS3: "hub_adapter.keras_layers.keras3",
    runtime.TF_KERAS: "hub_adapter.keras_layers.tf_keras",
}
# Keras 3 backend -> behaviour module (``keras.backend.backend()``).
_KERAS3_BACKENDS = {
    "tensorflow": "hub_adapter.keras_layers.keras3",
    "jax": "hub_adapter.keras_layers.jax_backend",
}
_OTHER_BACKENDS = "hub_adapter.keras_layers.other_backends"
_CLASSES: Dict[str, type] = {}
_LOCK = threading.RLock()


def layer_class(flavour: Optional[str] = None) -> type:
  """Returns the concrete ``KerasLayer`` class for a Keras flavour.

  Args:
    flavour: ``runtime.KERAS3`` or ``runtime.TF_KERAS``; default: the one
      running now (:func:`hub_adapter.runtime.keras_flavour`).

  Returns:
    A subclass of both ``hub_adapter.KerasLayer`` and that flavour's
    ``layers.Layer``.

  Raises:
    BackendUnavailableError: that flavour's Keras is not installed.
  """
  # Imported first: importing it registers the running flavour, which calls
  # back into this function before the lock below is taken.
  importlib.import_module("hub_adapter.keras_layer")
  flavour = flavour or runtime.keras_flavour()
  with _LOCK:
    cls = _CLASSES.get(flavour)
    if cls is None:
      cls = _build(flavour)
      _CLASSES[flavour] = cls
  return cls


def _build(flavour: str) -> type:
  from hub_adapter.keras_layer import KerasLayer  # pylint: disable=g-import-not-at-top
  keras = runtime.keras_module(flavour)
  behaviour = importlib.import_module(
      _behaviour_module(flavour, keras)).Behaviour
  # AutoGraph would otherwise convert the layer's Python plumbing (and
  # hub_adapter's model code it calls); none of it branches on tensors.
  call = runtime.tf().autograph.experimental.do_not_convert(
      vars(behaviour).get("call", KerasLayer.call))
  cls = type(NAME, (behaviour, KerasLayer, keras.layers.Layer), {
      "__module__": KerasLayer.__module__,
      "__qualname__": NAME,
      "__doc__": KerasLayer.__doc__,
      "call": call,
  })
  register(cls, keras)
  return cls


def _behaviour_module(flavour: str, keras: Any) -> str:
  """The behaviour module for a flavour and, under Keras 3, its backend."""
  if flavour != runtime.KERAS3:
    return _BEHAVIOURS[flavour]
  backend = keras.backend.backend()
  return _KERAS3_BACKENDS.get(backend, _OTHER_BACKENDS)


def register(cls: type, keras: Any) -> None:
  """Registers ``cls`` as ``"hub_adapter>KerasLayer"`` in ``keras``, in
  place of the reference that ``import hub_adapter`` entered there (see
  :mod:`hub_adapter.keras_layers.registration`)."""
  from hub_adapter.keras_layers import registration  # pylint: disable=g-import-not-at-top
  registration.forget(keras)
  saving = getattr(keras, "saving", None)
  register_fn = getattr(saving, "register_keras_serializable", None)
  if register_fn is None:  # TF 2.15's tf.keras has it under utils only.
    register_fn = keras.utils.register_keras_serializable
  register_fn(package=PACKAGE, name=NAME)(cls)
