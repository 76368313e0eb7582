"""Builds the test models the suite runs against, once per source version.

Usage (tox runs these before the tests; see tox.ini)::

  python tests/models/build.py tf1_hub --out DIR          # in the tf215 env
  python tests/models/build.py tf2_saved_model --out DIR  # in the tf221 env

Each part is made by the reference libraries of its stack: TF1 Hub modules
with the real tensorflow_hub 0.15 on TensorFlow 2.15 (the last release with
``hub.Module``), TF2 SavedModels with TensorFlow 2.21, Keras 3 and tf_keras.
A part is built into a temporary folder beside ``DIR/PART`` and renamed into
place only when it is complete and verified, so an interrupted build leaves
nothing that looks finished. ``DIR/PART/stamp.json`` records a hash of the
generator's sources; a rerun with unchanged sources does nothing.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

PARTS = {
    # part: (module, what the running environment must have, tox env)
    "tf1_hub": ("tf1_hub", "TensorFlow 2.15 with tensorflow_hub 0.15",
                "tf215-models"),
    "tf2_saved_model": ("tf2_saved_model",
                        "TensorFlow 2.21 with Keras 3, tf_keras and "
                        "tensorflow_text", "tf221-models"),
}

STAMP = "stamp.json"


class BuildError(RuntimeError):
  """A part cannot be built in this environment."""


def source_hash(part: str) -> str:
  """Hashes the generator files a part is made from.

  Args:
    part: a key of ``PARTS``.

  Returns:
    The hex SHA-256 of ``build.py``, ``common.py`` and the part's own
    modules (files named after the part, e.g. ``tf1_*.py``).
  """
  prefix = part.split("_")[0] + "_"
  names = sorted(n for n in os.listdir(HERE) if n.endswith(".py") and (
      n in ("build.py", "common.py") or n.startswith(prefix)))
  digest = hashlib.sha256()
  for name in names:
    with open(os.path.join(HERE, name), "rb") as f:
      digest.update(name.encode() + b"\0" + f.read() + b"\0")
  return digest.hexdigest()


def is_current(part_dir: str, digest: str) -> bool:
  """Whether ``part_dir`` holds a finished build of these sources."""
  try:
    with open(os.path.join(part_dir, STAMP)) as f:
      return json.load(f).get("sources") == digest
  except (OSError, ValueError):
    return False


def check_environment(part: str) -> None:
  """Raises BuildError naming the tox env to use if this one cannot build.

  Args:
    part: a key of ``PARTS``.

  Raises:
    BuildError: a reference library of the part is missing here.
  """
  _, needs, env = PARTS[part]
  problems = []
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    version = tuple(int(p) for p in tf.__version__.split(".")[:2])
  except ImportError as e:
    problems.append(f"tensorflow cannot be imported ({e})")
    version = None
  if part == "tf1_hub":
    if version is not None and version >= (2, 16):
      problems.append(f"TensorFlow is {tf.__version__}, not 2.15")
    try:
      from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
      hub = import_tensorflow_hub()
      if not hasattr(hub, "Module"):
        problems.append(f"tensorflow_hub {hub.__version__} has no hub.Module")
    except ImportError as e:
      problems.append(f"tensorflow_hub cannot be imported ({e})")
  else:
    if version is not None and version < (2, 16):
      problems.append(f"TensorFlow is {tf.__version__}, not 2.21")
    for library in ("keras", "tf_keras", "tensorflow_text"):
      try:
        importlib.import_module(library)
      except ImportError as e:
        problems.append(f"{library} cannot be imported ({e})")
  if problems:
    raise BuildError(
        f"The {part} test models need {needs}, which this interpreter "
        f"({sys.executable}) lacks: {'; '.join(problems)}. Build them with "
        f"`python3 -m tox -e {env}` (plain `python3 -m tox` does it first).")


def build_part(part: str, out: str, force: bool = False) -> str:
  """Builds one part into ``OUT/PART`` unless it is already current.

  Args:
    part: a key of ``PARTS``.
    out: the models folder.
    force: rebuild even if the stamp matches.

  Returns:
    The part folder.

  Raises:
    BuildError: this environment cannot build the part.
    Exception: whatever the generator raised; nothing is left in place.
  """
  part_dir = os.path.join(out, part)
  digest = source_hash(part)
  if not force and is_current(part_dir, digest):
    print(f"{part}: up to date in {part_dir}")
    return part_dir
  check_environment(part)
  os.makedirs(out, exist_ok=True)
  started = time.monotonic()
  scratch = tempfile.mkdtemp(prefix=f".{part}-", dir=out)
  try:
    module = importlib.import_module(PARTS[part][0])
    module.build(scratch)
    with open(os.path.join(scratch, STAMP), "w") as f:
      json.dump({"sources": digest, "python": sys.executable}, f)
    os.chmod(scratch, 0o755)
    if os.path.exists(part_dir):
      shutil.rmtree(part_dir)
    os.rename(scratch, part_dir)
  finally:
    if os.path.exists(scratch):
      shutil.rmtree(scratch, ignore_errors=True)
  print(f"{part}: built in {time.monotonic() - started:.0f} s into {part_dir}")
  return part_dir


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("part", choices=sorted(PARTS))
  parser.add_argument("--out", required=True, help="the models folder")
  parser.add_argument("--force", action="store_true",
                      help="rebuild even if the sources did not change")
  args = parser.parse_args(argv)
  try:
    build_part(args.part, os.path.abspath(args.out), force=args.force)
  except BuildError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
