"""Child process: read a model's variable files with plain file reads.

This is the hardware reference for loading: the same bytes the loader has to
restore, read from the page cache (the driver reads them once beforehand).
``read_s`` reads into one reused, already touched buffer: the limit, with no
parsing and no copies beyond the read. ``read_new_s`` reads each file into
newly allocated memory, as a loader must, so it also pays the page faults of
fresh memory.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

CHUNK = 16 << 20


def variable_files(folder: str):
  """The files under ``folder/variables`` (data shards and index)."""
  root = os.path.join(folder, "variables")
  return sorted(os.path.join(root, name) for name in os.listdir(root))


def read_all(paths, view) -> int:
  """Reads every file to the end into ``view``; returns the bytes read."""
  total = 0
  for path in paths:
    with open(path, "rb", buffering=0) as f:
      while True:
        n = f.readinto(view)
        if not n:
          break
        total += n
  return total


def measure(args):
  paths = variable_files(args["folder"])
  view = memoryview(bytearray(CHUNK))
  read_all(paths, view)  # Touches the buffer and the files, untimed.
  start = time.perf_counter()
  total = read_all(paths, view)
  read_s = time.perf_counter() - start
  start = time.perf_counter()
  for path in paths:
    with open(path, "rb", buffering=0) as f:
      data = f.read()
    del data
  read_new_s = time.perf_counter() - start
  return {"bytes": total, "read_s": read_s, "read_new_s": read_new_s}


if __name__ == "__main__":
  _common.child_main(measure)
