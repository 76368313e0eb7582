"""Child process (TF 2.15): the TF1 engine in graph mode.

``hub_adapter.Module`` or tensorflow_hub 0.15's ``hub.Module`` on the same
TF1 Hub module: graph construction, then session creation, initializers and
the first ``session.run`` (which restores the variables), then the steady
``session.run`` time in blocks.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position


def measure(args):
  """Builds and runs ``args["path"]`` with ``args["engine"]``.

  Args:
    args: ``path``, ``engine`` (adapter or hub), ``dim`` (input width),
      ``batch`` and ``blocks``.

  Returns:
    ``build_s`` (graph construction), ``first_run_s`` (session, initializers
    and first run), ``run_s`` (steady seconds per run, per block) and the
    first output row for a cross-check.
  """
  _common.quiet_tensorflow()
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1
  v1.disable_v2_behavior()
  start = time.perf_counter()
  if args["engine"] == "adapter":
    module_class = _common.require_adapter("hub_adapter.tf1.module:Module")
  else:
    module_class = _common.import_hub().Module
  import_s = time.perf_counter() - start
  data = np.random.default_rng(0).standard_normal(
      (args["batch"], args["dim"]), dtype=np.float32)
  graph = tf.Graph()

  def build():
    with graph.as_default():
      x = v1.placeholder(tf.float32, [None, args["dim"]])
      module = module_class(args["path"])
      y = module(x)
      init = [v1.global_variables_initializer(), v1.tables_initializer()]
    return x, y, init

  start = time.perf_counter()
  if args["engine"] == "adapter":
    x, y, init = _common.adapter_call("hub_adapter.Module", build)
  else:
    x, y, init = build()
  build_s = time.perf_counter() - start
  start = time.perf_counter()
  session = v1.Session(graph=graph)
  session.run(init)
  first = session.run(y, {x: data})
  first_run_s = time.perf_counter() - start
  blocks = _common.block_times({"run": lambda: session.run(y, {x: data})},
                               calls=args["calls"], blocks=args["blocks"])
  session.close()
  return {"import_s": import_s, "build_s": build_s, "first_run_s": first_run_s,
          "run_s": blocks["run"], "first_output": [float(v) for v in first[:4]],
          "peak_rss": _common.peak_rss_bytes()}


if __name__ == "__main__":
  _common.child_main(measure)
