"""``KerasLayer`` on Keras 3 backends it cannot run on (PyTorch, ...).

The layer class still exists (so ``import hub_adapter`` and deserialization
registration work under any backend), but making a layer raises
:class:`~hub_adapter.errors.UnsupportedBackendError` with the remedy from
:mod:`hub_adapter.backend_support`, before the model is loaded.

Only :mod:`hub_adapter.keras_layers.flavours` imports this module.
"""
from __future__ import annotations

import keras

from hub_adapter import backend_support
from hub_adapter.keras_layers import keras3


class Behaviour(keras3.Behaviour):
  """Refuses construction on an unsupported Keras 3 backend."""

  def __init__(self, handle=None, *args, **kwargs):
    del args, kwargs
    backend = keras.backend.backend()
    backend_support.refuse(
        backend, backend_support.Limit.BACKEND,
        f"KerasLayer({handle!r}) cannot run on Keras' {backend!r} backend.",
        handle=handle if isinstance(handle, str) else None)
