"""Helpers shared by the benchmark driver and its child processes.

Every measurement runs in a child process that prints exactly one line
starting with ``BENCH_RESULT`` followed by JSON. A child that cannot measure
because a part of hub_adapter is missing prints ``{"unavailable": reason}``
instead of crashing, so the driver can report it and carry on.
"""
from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional

RESULT_PREFIX = "BENCH_RESULT "
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class Unavailable(Exception):
  """A measured part of hub_adapter is missing or refuses the model."""


def emit(result: Dict[str, Any]) -> None:
  """Prints a child's result line for the driver to pick up."""
  sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
  sys.stdout.flush()


def child_main(measure: Callable[[Dict[str, Any]], Dict[str, Any]]) -> None:
  """Runs ``measure`` on the JSON argument given in argv[1] and emits it.

  Args:
    measure: Takes the decoded arguments and returns a JSON-able dict.

  A missing hub_adapter part (``Unavailable``, or an ImportError or
  AttributeError raised while reaching for it) becomes an ``unavailable``
  result; any other exception propagates so the driver shows the traceback.
  """
  args = json.loads(sys.argv[1])
  try:
    result = measure(args)
  except Unavailable as e:
    result = {"unavailable": str(e)}
  emit(result)


def require_adapter(dotted: str) -> Any:
  """Returns ``module:attribute`` of hub_adapter or raises Unavailable.

  Args:
    dotted: e.g. ``"hub_adapter.loading:load"``.

  Returns:
    The attribute.

  Raises:
    Unavailable: the module is not written yet or lacks the attribute.
  """
  import importlib  # pylint: disable=g-import-not-at-top
  module_name, _, attribute = dotted.partition(":")
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name and (e.name == module_name or module_name.startswith(e.name)):
      raise Unavailable(f"{module_name} does not exist yet") from e
    raise Unavailable(f"importing {module_name} failed: {e}") from e
  except Exception as e:  # pylint: disable=broad-except
    raise Unavailable(f"importing {module_name} failed: "
                      f"{type(e).__name__}: {_first_line(e)}") from e
  try:
    return getattr(module, attribute)
  except AttributeError as e:
    raise Unavailable(f"{module_name} has no {attribute} yet") from e


def adapter_call(what: str, fn: Callable[[], Any]) -> Any:
  """Runs ``fn``; a hub_adapter error or NotImplementedError -> Unavailable.

  Errors inside hub_adapter while other helpers are still writing it (a
  backend that is not there yet, an unsupported cell) mean "cannot be
  measured now", not "the benchmark is broken".
  """
  try:
    return fn()
  except Unavailable:
    raise
  except (ImportError, NotImplementedError, AttributeError) as e:
    raise Unavailable(f"{what} failed: {type(e).__name__}: "
                      f"{_first_line(e)}") from e
  except Exception as e:  # pylint: disable=broad-except
    if type(e).__module__.startswith("hub_adapter"):
      raise Unavailable(f"{what} raised {type(e).__name__}: "
                        f"{_first_line(e)}") from e
    tb = traceback.extract_tb(e.__traceback__)
    if any("/hub_adapter/" in frame.filename for frame in tb[-3:]):
      raise Unavailable(f"{what} failed inside hub_adapter: "
                        f"{type(e).__name__}: {_first_line(e)}") from e
    raise


def _first_line(e: BaseException) -> str:
  text = str(e).strip().splitlines()
  return text[0][:300] if text else ""


def quiet_tensorflow() -> None:
  """Silences TF's C++ and Python logging for clean child output."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  import logging  # pylint: disable=g-import-not-at-top
  logging.getLogger("tensorflow").setLevel(logging.ERROR)
  logging.getLogger("absl").setLevel(logging.ERROR)


def import_hub():
  """Imports tensorflow_hub the way hub_adapter does (setuptools >= 81)."""
  sys.path.insert(0, REPO)
  from hub_adapter import _hub_import  # pylint: disable=g-import-not-at-top
  return _hub_import.import_tensorflow_hub()


def rss_bytes() -> int:
  """Current resident set size of this process."""
  with open("/proc/self/statm") as f:
    pages = int(f.read().split()[1])
  return pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
  """Peak resident set size of this process so far (Linux: KiB units)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextlib.contextmanager
def timed_tf_loader(record: Dict[str, float]):
  """Adds the time spent inside TF's SavedModel loader to record["tf_s"].

  Every public TF2 loading path (``tf.saved_model.load``, ``hub.load``)
  goes through ``load_partial`` in ``tensorflow.python.saved_model.load``;
  timing it lets a child split a wrapper's own time from TensorFlow's.
  """
  from tensorflow.python.saved_model import load as tf_load  # pylint: disable=g-import-not-at-top
  original = tf_load.load_partial
  record.setdefault("tf_s", 0.0)
  depth = [0]

  def wrapper(*args, **kwargs):
    depth[0] += 1
    start = time.perf_counter()
    try:
      return original(*args, **kwargs)
    finally:
      depth[0] -= 1
      if depth[0] == 0:
        record["tf_s"] += time.perf_counter() - start

  tf_load.load_partial = wrapper
  try:
    yield record
  finally:
    tf_load.load_partial = original


def median(values: Iterable[float]) -> Optional[float]:
  values = [v for v in values if v is not None]
  return statistics.median(values) if values else None


def spread(values: List[float]) -> Optional[float]:
  """(max - min) / median of a sample, a robust-enough noise figure."""
  values = [v for v in values if v is not None]
  if len(values) < 2:
    return None
  m = statistics.median(values)
  return (max(values) - min(values)) / m if m else None


def block_times(fns: Dict[str, Callable[[], Any]], calls: int, blocks: int
                ) -> Dict[str, List[float]]:
  """Times ``calls`` calls of each function per block, blocks interleaved.

  Interleaving (a, b, a, b, ...) rather than (a, a, ..., b, b, ...) keeps a
  burst of load from another process on the machine from landing on one
  variant only. Returns seconds per call for every block.
  """
  out: Dict[str, List[float]] = {name: [] for name in fns}
  names = list(fns)
  for block in range(blocks):
    order = names if block % 2 == 0 else names[::-1]
    for name in order:
      fn = fns[name]
      start = time.perf_counter()
      for _ in range(calls):
        fn()
      out[name].append((time.perf_counter() - start) / calls)
  return out


def sig(x: Optional[float], digits: int = 4) -> Optional[float]:
  """Rounds to significant digits for compact JSON."""
  if x is None:
    return None
  if x == 0:
    return 0.0
  return float(f"{x:.{digits}g}")


def profiled(fn: Callable[[], Any], top: int = 12):
  """Runs ``fn`` under cProfile; returns (its result, the hot spots).

  The hot spots are the ``top`` functions by cumulative time whose code is
  in hub_adapter, plus ``time.sleep`` wherever it was called: a diagnosis
  aid for a missed goal (``--profile`` in run.py), not a measurement.
  """
  import cProfile  # pylint: disable=g-import-not-at-top
  import pstats  # pylint: disable=g-import-not-at-top
  profiler = cProfile.Profile()
  result = profiler.runcall(fn)
  stats = pstats.Stats(profiler).stats  # pylint: disable=no-member
  rows = []
  for (filename, line, name), (_, calls, _, cumulative, _) in stats.items():
    if "/hub_adapter/" in filename or name in ("<built-in method time.sleep>",
                                               "sleep"):
      short = filename.split("/hub_adapter/")[-1] if "/hub_adapter/" in filename else "time"
      rows.append((cumulative, f"{short}:{line}({name})", calls))
  rows.sort(reverse=True)
  return result, [{"where": w, "cum_s": sig(c), "calls": n}
                  for c, w, n in rows[:top]]
