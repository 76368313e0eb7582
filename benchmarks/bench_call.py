"""Child process: forward-pass overhead of KerasLayer inside a tf.function.

Three ``tf.function``s, each traced once for a fixed input shape, compute
the same MLP: ``raw`` calls the object ``tf.saved_model.load`` returned,
``adapter`` calls ``hub_adapter.KerasLayer`` and ``hub`` calls
``hub.KerasLayer`` (a tf_keras layer, so only with ``TF_USE_LEGACY_KERAS=1``
or TF 2.15). Calls are timed in interleaved blocks.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

BLOCK_SECONDS = 0.05


def _calls_per_block(fn) -> int:
  start = time.perf_counter()
  for _ in range(5):
    fn()
  per_call = (time.perf_counter() - start) / 5
  return max(5, int(BLOCK_SECONDS / max(per_call, 1e-6)))


def measure(args):
  """Times the forward pass for each batch size in ``args["batches"]``.

  Args:
    args: ``path`` (the tf2_call model), ``dim`` (its input width),
      ``batches`` and ``blocks``.

  Returns:
    ``{"keras": flavour, "batches": {batch: {variant: [s per call...]}}}``.
  """
  _common.quiet_tensorflow()
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hub_adapter import runtime  # pylint: disable=g-import-not-at-top
  path = args["path"]
  flavour = runtime.keras_flavour()
  raw = tf.saved_model.load(path)
  callers = {"raw": lambda x: raw(x)}
  unavailable = {}
  try:
    keras_layer = _common.require_adapter("hub_adapter.keras_layer:KerasLayer")
    layer = _common.adapter_call("hub_adapter.KerasLayer",
                                 lambda: keras_layer(path))
    probe = tf.zeros([1, args["dim"]])
    _common.adapter_call("hub_adapter.KerasLayer call", lambda: layer(probe))
    callers["adapter"] = layer
  except _common.Unavailable as e:
    unavailable["adapter"] = str(e)
  if flavour == runtime.TF_KERAS:
    hub_layer = _common.import_hub().KerasLayer(path)
    callers["hub"] = hub_layer
  results = {}
  graph_ops = {}
  rng = np.random.default_rng(0)
  for batch in args["batches"]:
    x = tf.constant(rng.standard_normal((batch, args["dim"]), dtype=np.float32))
    fns = {}
    expected = None
    for name, caller in callers.items():
      step = _step(tf, caller)
      value = step(x).numpy()  # Traces outside the clock.
      if expected is None:
        expected = value
      elif not np.allclose(value, expected, rtol=1e-5, atol=1e-5):
        raise AssertionError(f"{name} computes something else than raw")
      fns[name] = lambda s=step: s(x)
      if batch == args["batches"][0]:
        graph_ops[name] = _op_counts(step.get_concrete_function(x).graph)
    calls = _calls_per_block(fns["raw"])
    results[str(batch)] = _common.block_times(fns, calls, args["blocks"])
  return {"keras": flavour, "batches": results, "missing": unavailable,
          "graph_ops": graph_ops}


def _step(tf, caller):
  """``tf.function(lambda t: caller(t))`` with ``caller`` in a closure.

  Not as a default argument: tf.function puts default arguments into each
  call's cache key, and computing that for a Keras layer costs a few
  microseconds per call that have nothing to do with the layer.
  """
  return tf.function(lambda t: caller(t))  # pylint: disable=unnecessary-lambda


def _op_counts(graph):
  """Op types in the traced outer graph: what a call adds around the model."""
  counts = {}
  for op in graph.get_operations():
    if op.type not in ("Placeholder", "NoOp"):
      counts[op.type] = counts.get(op.type, 0) + 1
  return dict(sorted(counts.items()))


if __name__ == "__main__":
  _common.child_main(measure)
