"""Child process: Model.fit throughput with a trainable KerasLayer.

The same network is built three ways in one process: ``direct`` with Keras
Dense layers, ``adapter`` with ``hub_adapter.KerasLayer(trainable=True)``
wrapping the tf2_fit SavedModel (an MLP of the same shape), and ``hub`` with
``hub.KerasLayer(trainable=True)`` where it can run (tf_keras). Each gets a
Dense head and the same optimizer and loss; after one untimed epoch (tracing),
timed epochs of the three alternate. A step's time is the gap between two
consecutive ``on_train_batch_end`` calls; the median over all timed steps
shrugs off bursts of load from other processes on a shared machine, and the
per-``fit`` set-up (the same for every variant) is left out.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

HEAD = 16


def _model(keras, dims, body):
  inputs = keras.Input(shape=(dims[0],))
  outputs = keras.layers.Dense(HEAD)(body(inputs))
  model = keras.Model(inputs, outputs)
  model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse",
                jit_compile=False)
  return model


def measure(args):
  """Returns steps per second for each variant over alternating epochs.

  Args:
    args: ``path``, ``dims`` (the MLP widths), ``batch``, ``steps`` (per
      timed epoch) and ``rounds``.

  Returns:
    ``{"keras": flavour, "step_s": {variant: median seconds per step},
    "epoch_steps_per_s": {variant: [...]}, "trainable_weights": {...}}``.
  """
  _common.quiet_tensorflow()
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,unused-import
  from hub_adapter import runtime  # pylint: disable=g-import-not-at-top
  keras = runtime.keras_module()
  flavour = runtime.keras_flavour()
  dims, path = args["dims"], args["path"]

  def direct_body(x):
    for width in dims[1:]:
      x = keras.layers.Dense(width, activation="relu")(x)
    return x

  models = {"direct": _model(keras, dims, direct_body)}
  unavailable = {}
  try:
    keras_layer = _common.require_adapter("hub_adapter.keras_layer:KerasLayer")
    layer = _common.adapter_call(
        "hub_adapter.KerasLayer(trainable=True)",
        lambda: keras_layer(path, trainable=True))
    models["adapter"] = _common.adapter_call(
        "building a Keras model on hub_adapter.KerasLayer",
        lambda: _model(keras, dims, layer))
  except _common.Unavailable as e:
    unavailable["adapter"] = str(e)
  if flavour == runtime.TF_KERAS:
    hub_layer = _common.import_hub().KerasLayer(path, trainable=True)
    models["hub"] = _model(keras, dims, hub_layer)
  rng = np.random.default_rng(0)
  n = args["batch"] * args["steps"]
  x = rng.standard_normal((n, dims[0]), dtype=np.float32)
  y = rng.standard_normal((n, HEAD), dtype=np.float32)

  class StepTimer(keras.callbacks.Callback):
    """Collects the gaps between consecutive train batch ends."""

    def __init__(self):
      super().__init__()
      self.gaps = []
      self._last = None

    def on_train_begin(self, logs=None):
      self._last = None

    def on_train_batch_end(self, batch, logs=None):
      now = time.perf_counter()
      if self._last is not None:
        self.gaps.append(now - self._last)
      self._last = now

  def epoch(model, timer=None):
    model.fit(x, y, batch_size=args["batch"], epochs=1, verbose=0,
              shuffle=False, callbacks=[timer] if timer else None)

  for name, model in list(models.items()):
    if name == "adapter":
      try:
        _common.adapter_call("Model.fit on hub_adapter.KerasLayer",
                             lambda m=model: epoch(m))
      except _common.Unavailable as e:
        unavailable["adapter"] = str(e)
        del models["adapter"]
    else:
      epoch(model)
  weights = {name: len(m.trainable_weights) for name, m in models.items()}
  rates = {name: [] for name in models}
  timers = {name: StepTimer() for name in models}
  names = list(models)
  for r in range(args["rounds"]):
    for name in (names if r % 2 == 0 else names[::-1]):
      start = time.perf_counter()
      epoch(models[name], timers[name])
      rates[name].append(args["steps"] / (time.perf_counter() - start))
  step_s = {name: _common.median(t.gaps) for name, t in timers.items()}
  return {"keras": flavour, "step_s": step_s, "epoch_steps_per_s": rates,
          "trainable_weights": weights, "missing": unavailable}


if __name__ == "__main__":
  _common.child_main(measure)
