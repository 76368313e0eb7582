"""Child process: load one model once with one loader and time it.

Loaders: ``adapter`` (``hub_adapter.load``), ``hub`` (``hub.load``) and
``tf`` (``tf.saved_model.load``). TensorFlow is imported and its eager
context started before the clock starts, since every loader pays that alike;
the loader's own package import is timed separately (``import_s``).

The handle is loaded twice: ``load_s`` is the first load in the process
(what a script waits for after ``import tensorflow``, together with
``import_s``), ``warm_s`` a second load of the same handle after the first
model is dropped (the per-load cost once lazy imports and TensorFlow's
one-time set-up are paid). For both the child reports the time spent inside
TensorFlow's SavedModel loader (``tf_s``, ``warm_tf_s``) so a wrapper's own
cost can be told from TensorFlow's, plus its resident memory before the first
load and its peak RSS right after it.
"""
from __future__ import annotations

import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position


def measure(args):
  """Loads ``args["handle"]`` with ``args["loader"]``.

  Args:
    args: ``handle`` (folder or URL), ``loader``, ``tf1`` (the handle is
      a TF1 Hub module, which tf.saved_model.load needs ``tags=[]`` for),
      ``second`` (default true: also time a second load) and ``profile``.

  Returns:
    Seconds (``import_s``, ``load_s``, ``tf_s``, ``warm_s``, ``warm_tf_s``)
    and bytes (``rss_before``, ``peak_rss``).
  """
  _common.quiet_tensorflow()
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.constant(0.0).numpy()  # Starts the eager context outside the clock.
  if "import_only" in args:
    return _time_imports(args["import_only"])
  before = set(sys.modules)
  loader = args["loader"]
  handle = args["handle"]
  start = time.perf_counter()
  if loader == "adapter":
    load = _common.require_adapter("hub_adapter.loading:load")
  elif loader == "hub":
    load = _common.import_hub().load
  else:
    load = lambda h: tf.saved_model.load(h, tags=[] if args.get("tf1") else None)
  import_s = time.perf_counter() - start
  rss_before = _common.rss_bytes()
  record = {}
  hot = None
  with _common.timed_tf_loader(record):
    start = time.perf_counter()
    if loader == "adapter" and args.get("profile"):
      model, hot = _common.adapter_call(
          "hub_adapter.load", lambda: _common.profiled(lambda: load(handle)))
    elif loader == "adapter":
      model = _common.adapter_call("hub_adapter.load",
                                   lambda: load(handle))
    else:
      model = load(handle)
    load_s = time.perf_counter() - start
  peak_rss = _common.peak_rss_bytes()
  del model
  if not args.get("second", True):
    extra = {}
    if hot:
      extra = {"profile": hot, "new_modules": sorted(
          m for m in set(sys.modules) - before
          if m.startswith(("hub_adapter", "tensorflow_hub")))}
    return {"load_s": load_s, "tf_s": record["tf_s"], "import_s": import_s,
            "rss_before": rss_before, "peak_rss": peak_rss, **extra}
  gc.collect()
  warm = {}
  with _common.timed_tf_loader(warm):
    start = time.perf_counter()
    model = load(handle)
    warm_s = time.perf_counter() - start
  del model
  return {"load_s": load_s, "tf_s": record["tf_s"], "import_s": import_s,
          "warm_s": warm_s, "warm_tf_s": warm["tf_s"],
          "rss_before": rss_before, "peak_rss": peak_rss,
          **({"profile": hot} if hot else {})}


def _time_imports(modules):
  """Seconds to import ``modules`` (after TensorFlow) in a fresh process."""
  import importlib  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  if any(name.startswith("tensorflow_hub") for name in modules):
    _common.import_hub()  # Needs the pkg_resources stand-in.
  for name in modules:
    importlib.import_module(name)
  return {"import_s": time.perf_counter() - start}


if __name__ == "__main__":
  _common.child_main(measure)
