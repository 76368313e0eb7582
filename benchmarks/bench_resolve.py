"""Child process: first download and extraction of an archived model.

Resolvers: ``adapter`` (``hub_adapter.resolve`` of a 127.0.0.1 URL into an
empty ``TFHUB_CACHE_DIR``), ``hub`` (``hub.resolve``, the same) and ``disk``
(the reference: ``tarfile`` extraction of the same archive read from disk).
"""
from __future__ import annotations

import os
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position


def measure(args):
  """Resolves ``args["url"]`` or extracts ``args["archive"]``.

  Args:
    args: ``resolver``; ``url`` for adapter/hub; ``archive`` and ``target``
      (an empty folder) for disk.

  Returns:
    ``import_s`` (the resolver's package, after TensorFlow), ``resolve_s``
    and the bytes of the folder it produced.
  """
  _common.quiet_tensorflow()
  resolver = args["resolver"]
  hot = None
  if resolver == "disk":
    start = time.perf_counter()
    with tarfile.open(args["archive"], "r:gz") as tar:
      tar.extractall(args["target"], filter="data")
    resolve_s = time.perf_counter() - start
    folder = args["target"]
  else:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top,unused-import
    tf.constant(0.0).numpy()
    before = set(sys.modules)
    start = time.perf_counter()
    if resolver == "adapter":
      resolve = _common.require_adapter("hub_adapter.handles:resolve")
    else:
      resolve = _common.import_hub().resolve
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    hot = None
    if resolver == "adapter" and args.get("profile"):
      folder, hot = _common.adapter_call(
          "hub_adapter.handles",
          lambda: _common.profiled(lambda: resolve(args["url"])))
    elif resolver == "adapter":
      folder = _common.adapter_call("hub_adapter.handles",
                                    lambda: resolve(args["url"]))
    else:
      folder = resolve(args["url"])
    resolve_s = time.perf_counter() - start
  size = sum(os.path.getsize(os.path.join(d, f))
             for d, _, files in os.walk(folder) for f in files)
  result = {"resolve_s": resolve_s, "bytes": size, "folder": str(folder),
            "import_s": 0.0 if resolver == "disk" else import_s}
  if resolver != "disk" and hot:
    result["profile"] = hot
    result["new_modules"] = sorted(
        m for m in set(sys.modules) - before
        if m.startswith(("hub_adapter", "tensorflow_hub")))
  return result


if __name__ == "__main__":
  _common.child_main(measure)
