"""Child process (TF 2.15): the TF1 engine in graph mode.

``hub_adapter.Module`` or tensorflow_hub 0.15's ``hub.Module`` on the same
TF1 Hub module: graph construction, then session creation, initializers and
the first ``session.run`` (which restores the variables), timed for one
engine from a fresh process; then the steady ``session.run`` time of both
engines, each in its own graph, in interleaved blocks.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

BLOCK_SECONDS = 0.05


def measure(args):
  """Builds and runs ``args["path"]`` with ``args["engine"]``, then both.

  Args:
    args: ``path``, ``engine`` (adapter or hub: the one timed from a fresh
      process), ``dim`` (input width), ``batch``, ``calls`` (at most, per
      block of about BLOCK_SECONDS) and ``blocks``.

  Returns:
    ``build_s`` (graph construction), ``first_run_s`` (session, initializers
    and first run) of ``engine``; ``run_s`` ({engine: steady seconds per run
    for each block}) for both engines, each in its own graph and session,
    their blocks interleaved; and the first output rows for a cross-check.
  """
  _common.quiet_tensorflow()
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1
  v1.disable_v2_behavior()
  engine = args["engine"]
  start = time.perf_counter()
  classes = {}
  try:
    classes["adapter"] = _common.require_adapter("hub_adapter.tf1.module:Module")
  except _common.Unavailable:
    if engine == "adapter":
      raise
  import_adapter_s = time.perf_counter() - start
  start = time.perf_counter()
  classes["hub"] = _common.import_hub().Module
  import_hub_s = time.perf_counter() - start
  data = np.random.default_rng(0).standard_normal(
      (args["batch"], args["dim"]), dtype=np.float32)

  def build(name):
    graph = tf.Graph()
    with graph.as_default():
      x = v1.placeholder(tf.float32, [None, args["dim"]])
      module = classes[name](args["path"])
      y = module(x)
      init = [v1.global_variables_initializer(), v1.tables_initializer()]
    return graph, x, y, init

  def first_run(built):
    graph, x, y, init = built
    session = v1.Session(graph=graph)
    session.run(init)
    return session, session.run(y, {x: data})

  start = time.perf_counter()
  if engine == "adapter":
    built = _common.adapter_call("hub_adapter.Module", lambda: build(engine))
  else:
    built = build(engine)
  build_s = time.perf_counter() - start
  start = time.perf_counter()
  session, first = first_run(built)
  first_run_s = time.perf_counter() - start
  runs = {engine: (session, built)}
  outputs = {engine: [float(v) for v in first[:4]]}
  other = "hub" if engine == "adapter" else "adapter"
  if other in classes:
    try:
      other_built = _common.adapter_call("hub_adapter.Module",
                                         lambda: build(other))
      other_session, other_first = first_run(other_built)
      runs[other] = (other_session, other_built)
      outputs[other] = [float(v) for v in other_first[:4]]
    except _common.Unavailable:
      pass
  peak_rss = _common.peak_rss_bytes()
  graph_ops = {name: _run_ops(b[0], b[2]) for name, (_, b) in runs.items()}
  fns = {name: (lambda s=sess, b=b: s.run(b[2], {b[1]: data}))
         for name, (sess, b) in runs.items()}
  start = time.perf_counter()
  for _ in range(3):
    fns[engine]()
  per_run = (time.perf_counter() - start) / 3
  # Blocks of about BLOCK_SECONDS whatever the module's size.
  calls = max(3, min(args["calls"], int(BLOCK_SECONDS / max(per_run, 1e-6))))
  blocks = _common.block_times(fns, calls=calls, blocks=args["blocks"])
  for sess, _ in runs.values():
    sess.close()
  return {"import_s": import_adapter_s if engine == "adapter" else import_hub_s,
          "build_s": build_s, "first_run_s": first_run_s, "run_s": blocks,
          "first_output": outputs, "peak_rss": peak_rss,
          "graph_ops": graph_ops}


def _run_ops(graph, fetch):
  """Op types that running ``fetch`` executes (its transitive inputs)."""
  counts, seen, stack = {}, set(), [fetch.op]
  while stack:
    op = stack.pop()
    if op.name in seen:
      continue
    seen.add(op.name)
    counts[op.type] = counts.get(op.type, 0) + 1
    stack.extend(t.op for t in op.inputs)
    stack.extend(op.control_inputs)
  del graph
  return dict(sorted(counts.items()))


if __name__ == "__main__":
  _common.child_main(measure)
