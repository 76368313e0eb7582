"""Child process: load one model once with one restore variant and time it.

Variants:

- ``tf``: ``tf.saved_model.load`` (TensorFlow's own restore);
- ``hub``: ``hub.load`` (tensorflow_hub, which calls the former);
- ``adapter``: ``hub_adapter.load`` with the parallel restore (the driver
  sets ``HUB_ADAPTER_RESTORE_THREADS`` for the thread counts it compares);
- ``adapter_tf``: ``hub_adapter.load(..., restore="tensorflow")``;
- ``structure``: ``tf.saved_model.load`` with
  ``LoadOptions(experimental_skip_checkpoint=True)``: rebuilding the model
  alone, the lower bound of any load together with reading the bytes.

TensorFlow is imported, its eager context started and the loader's modules
imported before the clock starts (the load section measures imports); the
clock covers one load, the first in the process, as a script sees it. The
child also reports its resident memory before the load, its peak RSS after
it, and, for the adapter, whether it fell back to TensorFlow's restore (the
reason it logged), so a silent fallback cannot pass for a measurement.
"""
from __future__ import annotations

import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

VARIANTS = ("tf", "hub", "adapter", "adapter_tf", "structure")


class _Fallbacks(logging.Handler):
  """Collects hub_adapter's "TensorFlow's own restore" log lines."""

  def __init__(self):
    super().__init__(logging.INFO)
    self.reasons = []

  def emit(self, record):
    text = record.getMessage()
    if "TensorFlow's own restore" in text:
      self.reasons.append(text)


def measure(args):
  """Loads ``args["path"]`` with ``args["variant"]``.

  Returns:
    ``load_s``, ``rss_before``, ``peak_rss`` (bytes), ``fallback`` (the
    adapter's logged reason or None) and ``threads``.
  """
  _common.quiet_tensorflow()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.constant(0.0).numpy()  # Starts the eager context outside the clock.
  variant, path = args["variant"], args["path"]
  fallbacks = _Fallbacks()
  if variant in ("adapter", "adapter_tf"):
    load = _common.require_adapter("hub_adapter.loading:load")
    _common.require_adapter("hub_adapter.tf2.eager:load")
    restore = _common.require_adapter("hub_adapter.tf2.restore:thread_count")
    absl_logger = logging.getLogger("absl")
    absl_logger.addHandler(fallbacks)
    absl_logger.setLevel(logging.INFO)
    method = "tensorflow" if variant == "adapter_tf" else "parallel"
    run = lambda: _common.adapter_call(
        "hub_adapter.load", lambda: load(path, restore=method))
  elif variant == "hub":
    run = lambda: _common.import_hub().load(path)
    _common.import_hub()
  elif variant == "tf":
    run = lambda: tf.saved_model.load(path)
  elif variant == "structure":
    options = tf.saved_model.LoadOptions(experimental_skip_checkpoint=True)
    run = lambda: tf.saved_model.load(path, options=options)
  else:
    raise ValueError(f"unknown variant {variant!r}; known: {VARIANTS}")
  rss_before = _common.rss_bytes()
  start = time.perf_counter()
  model = run()
  load_s = time.perf_counter() - start
  peak_rss = _common.peak_rss_bytes()
  del model
  return {"load_s": load_s, "rss_before": rss_before, "peak_rss": peak_rss,
          "fallback": fallbacks.reasons[0] if fallbacks.reasons else None,
          "threads": restore() if variant == "adapter" else None}


if __name__ == "__main__":
  _common.child_main(measure)
