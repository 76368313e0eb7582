"""Makes ``hub_adapter/_op_library_table.py``: which library registers which op.

A TF Hub model may use ops that plain TensorFlow does not register: they
come from add-on libraries (``tensorflow_text`` for BERT preprocessors, ...)
and exist only once the library's Python package is imported.
``hub_adapter.op_libraries`` maps such ops back to the library that provides
them, from a table written by this script. Two ways to fill it:

1. **Registry diff** (for libraries installed in the running environment):
   in a fresh child process, list every op TensorFlow's global registry knows
   (``TF_GetAllOpList``), import the library, list again; the new names are
   the library's ops. Run it once per stack and the entries are merged (the
   union of the ops, with the TensorFlow and library versions each run saw)::

     .tox/tf215/bin/python tools/make_op_library_table.py --diff tensorflow_text
     .tox/tf221/bin/python tools/make_op_library_table.py --diff tensorflow_text

2. **Source scan** (for libraries that are not installed): read the
   ``REGISTER_OP("Name")`` string literals of a checkout of the library's C++
   sources, leaving out any name the running TensorFlow registers itself::

     python tools/make_op_library_table.py \\
         --source tensorflow_io=/path/to/checkout@github.com/tensorflow/io@COMMIT

Entries already in the table are kept and merged; ``--check`` only verifies
that the installed libraries' ops are all in the table (exit status 1 when
not). Library facts that cannot be measured (pip name, how its versions
follow TensorFlow's, op-name prefixes) are in :data:`KNOWN`.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import pprint
import re
import subprocess
import sys
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, os.pardir, "hub_adapter", "_op_library_table.py")

KNOWN: Dict[str, Dict[str, Any]] = {
    # import name: facts the registry cannot tell.
    #   pip: the pip package;
    #   follows_tensorflow: its releases are numbered after TensorFlow's
    #     major.minor (tensorflow-text 2.15.x is built for TF 2.15), so the
    #     matching release can be named; otherwise the message points to the
    #     library's compatibility table;
    #   prefixes: op-name namespaces only this library uses ("IO>...").
    "tensorflow_text": {"pip": "tensorflow-text", "follows_tensorflow": True,
                        "prefixes": ["TFText>"],
                        "compatibility": "https://github.com/tensorflow/text"
                                         "#compatibility"},
    "tensorflow_decision_forests": {
        "pip": "tensorflow-decision-forests", "follows_tensorflow": False,
        "prefixes": [],
        "compatibility": "https://github.com/tensorflow/decision-forests/"
                         "blob/main/documentation/known_issues.md"},
    "tensorflow_io": {"pip": "tensorflow-io", "follows_tensorflow": False,
                      "prefixes": ["IO>"],
                      "compatibility": "https://github.com/tensorflow/io"
                                       "#tensorflow-version-compatibility"},
    "tensorflow_addons": {"pip": "tensorflow-addons",
                          "follows_tensorflow": False,
                          "prefixes": ["Addons>"],
                          "compatibility": "https://github.com/tensorflow/"
                                           "addons#python-op-compatility"},
}

_CHILD = r"""
import json, sys
from tensorflow.python.client import pywrap_tf_session as c
from tensorflow.core.framework import op_def_pb2
import tensorflow as tf

def ops():
  buf = c.TF_GetAllOpList()
  try:
    data = c.TF_GetBuffer(buf)
  finally:
    c.TF_DeleteBuffer(buf)
  op_list = op_def_pb2.OpList()
  op_list.ParseFromString(data)
  return {op.name for op in op_list.op}

name = sys.argv[1]
if not name:  # Only TensorFlow's own ops.
  print(json.dumps({"ops": sorted(ops()), "tensorflow": tf.__version__,
                    "version": None}))
  raise SystemExit(0)
# Some libraries import tensorflow_hub, which needs a pkg_resources stand-in
# on new setuptools; hub_adapter's importer provides it.
try:
  from hub_adapter._hub_import import import_tensorflow_hub
  import_tensorflow_hub()
except ImportError:
  pass
before = ops()
module = __import__(name)
after = ops()
from importlib import metadata
try:
  version = metadata.version(sys.argv[2])
except metadata.PackageNotFoundError:
  version = getattr(module, "__version__", "?")
print(json.dumps({"ops": sorted(after - before), "tensorflow": tf.__version__,
                  "version": version}))
"""


def registry_diff(library: str) -> Dict[str, Any]:
  """Lists the ops ``library`` registers, in a fresh child process.

  Args:
    library: The import name, e.g. ``tensorflow_text``.

  Returns:
    ``{"ops": [...], "tensorflow": "2.21.0", "version": "2.21.1"}``.

  Raises:
    RuntimeError: the child failed (the library is not installed, ...).
  """
  pip = KNOWN.get(library, {}).get("pip", library.replace("_", "-")) or "-"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  env["PYTHONPATH"] = os.pathsep.join(
      [os.path.join(HERE, os.pardir)] + [p for p in [env.get("PYTHONPATH")]
                                         if p])
  done = subprocess.run([sys.executable, "-c", _CHILD, library, pip],
                        capture_output=True, text=True, env=env, check=False)
  if done.returncode != 0:
    raise RuntimeError(f"importing {library} failed:\n{done.stderr[-3000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


_REGISTER_OP = re.compile(r'REGISTER_OP\(\s*"([^"]+)"\s*\)')


def source_scan(root: str) -> List[str]:
  """The op names a C++ source tree registers with ``REGISTER_OP("...")``."""
  found = set()
  for folder, _, files in os.walk(root):
    for name in files:
      if not name.endswith((".cc", ".cpp", ".h")):
        continue
      with open(os.path.join(folder, name), encoding="utf-8",
                errors="replace") as f:
        found.update(_REGISTER_OP.findall(f.read()))
  return sorted(found)


def read_table() -> Dict[str, Dict[str, Any]]:
  """The current table (empty when the file does not exist)."""
  if not os.path.isfile(TABLE):
    return {}
  scope: Dict[str, Any] = {}
  with open(TABLE, encoding="utf-8") as f:
    exec(compile(f.read(), TABLE, "exec"), scope)  # pylint: disable=exec-used
  return scope["LIBRARIES"]


def merge(table: Dict[str, Dict[str, Any]], library: str, ops: List[str],
          how: str) -> None:
  """Adds ``ops`` and a provenance line to ``table[library]``."""
  entry = table.setdefault(library, {})
  known = KNOWN.get(library, {})
  entry["pip"] = known.get("pip", entry.get("pip", library.replace("_", "-")))
  entry["follows_tensorflow"] = known.get(
      "follows_tensorflow", entry.get("follows_tensorflow", False))
  entry["prefixes"] = sorted(set(entry.get("prefixes", []))
                             | set(known.get("prefixes", [])))
  if "compatibility" in known:
    entry["compatibility"] = known["compatibility"]
  entry["ops"] = sorted(set(entry.get("ops", [])) | set(ops))
  sources = [s for s in entry.get("made_by", []) if s != how]
  entry["made_by"] = sorted(sources + [how])


def write_table(table: Dict[str, Dict[str, Any]]) -> None:
  """Writes the table as a Python module of data."""
  text = (
      '"""Op -> library table, generated by tools/make_op_library_table.py.\n'
      "\n"
      "Do not edit by hand: rerun the script (see its docstring). Each\n"
      "library's ``made_by`` says how its ops were found: a registry diff\n"
      "(TensorFlow and library versions) or a scan of its C++ sources.\n"
      '"""\n\n'
      f"# Last written {datetime.date.today().isoformat()}.\n"
      "LIBRARIES = " + pprint.pformat(table, indent=1, width=78,
                                      sort_dicts=True) + "\n")
  with open(TABLE, "w", encoding="utf-8") as f:
    f.write(text)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--diff", nargs="*", default=[], metavar="LIBRARY",
                      help="import names to measure by registry diff")
  parser.add_argument("--source", nargs="*", default=[],
                      metavar="LIBRARY=DIR[@ORIGIN]",
                      help="scan a source checkout for REGISTER_OP; ORIGIN "
                      "(e.g. github.com/tensorflow/io@COMMIT) is recorded")
  parser.add_argument("--check", action="store_true",
                      help="only check that installed libraries' ops are in "
                      "the table")
  args = parser.parse_args(argv)
  table = read_table()
  if args.check:
    missing = {}
    for library in args.diff or [k for k in table if k in KNOWN]:
      try:
        measured = registry_diff(library)
      except RuntimeError:
        continue
      absent = sorted(set(measured["ops"]) - set(table.get(library, {}).get(
          "ops", [])))
      if absent:
        missing[library] = absent
    print(json.dumps(missing, indent=1))
    return 1 if missing else 0
  for library in args.diff:
    measured = registry_diff(library)
    merge(table, library, measured["ops"],
          f"registry diff: TensorFlow {measured['tensorflow']} + "
          f"{KNOWN.get(library, {}).get('pip', library)} "
          f"{measured['version']}")
    print(f"{library}: {len(measured['ops'])} ops (TensorFlow "
          f"{measured['tensorflow']}, {library} {measured['version']})")
  core = set(registry_diff("")["ops"]) if args.source else set()
  for item in args.source:
    library, _, where = item.partition("=")
    root, _, revision = where.partition("@")
    # Names TensorFlow registers itself are not the library's to claim.
    ops = [op for op in source_scan(root) if op not in core]
    merge(table, library, ops,
          "source scan: REGISTER_OP(\"...\") in the C++ sources of "
          + (revision or os.path.basename(root.rstrip("/"))))
    print(f"{library}: {len(ops)} ops from sources")
  write_table(table)
  return 0


if __name__ == "__main__":
  sys.exit(main())
