"""Builds the TF2 SavedModel part of the test models (TensorFlow 2.21).

Six models, their ``.tar.gz`` archives, goldens and ``manifest.json``:

- ``tf2_image_bn_reusable``, ``tf2_signatures_only``,
  ``tf2_text_vocab_asset``, ``tf2_keras_savedmodel`` (``tf2_writers``);
- ``tf2_bert_preprocess`` and ``tf2_bert_encoder``, a BERT-style pair whose
  preprocessor needs the ops of ``tensorflow_text`` (``tf2_bert``).

:func:`build` runs four steps, each in a fresh interpreter (see
``common.run_fresh``), so that no state of one step reaches the next:

1. ``write``: writes the model folders (TensorFlow 2.21 in eager mode,
   Keras 3, tf_keras, tensorflow_text).
2. ``ops``: without importing tensorflow_text, lists the ops of each graph
   that core TensorFlow does not register.
3. ``record``: loads each model (``hub.load`` for the four classic ones, as
   their goldens always were; ``tf.saved_model.load`` after ``import
   tensorflow_text`` for the BERT pair), describes it, runs every case on a
   fresh load, and writes goldens, archives and the manifest.
4. ``verify``: reloads every model from its folder and from its archive and
   re-runs every case; raises if anything is not reproduced.

A manifest entry (``PART/manifest.json``, ``fixtures`` list; paths relative
to the part) has:

- ``name``, ``format`` (``tf2_saved_model``), ``kind``, ``description``,
  ``provenance``; ``path``, ``archive``, ``archive_sha256``, ``golden``,
  ``files``, ``empty_dirs_only_in_archive``, ``tolerance`` (rtol/atol
  1e-5) from ``common.finish_fixture``.
- Read back from the reloaded model (``tf2_goldens.describe``):
  ``tag_sets``; ``signatures`` (``{sig: {inputs|outputs: {name: {dtype,
  shape}}}}``, null = unknown dimension); ``has_call``; ``call``
  (``has_training_arg``, ``inputs``: the specs of the positional inputs of
  the traces, a dict input being one ``{name: spec}``; ``training_values``);
  ``auto_signature``; ``variables`` (``name`` with ``:0``, ``dtype``,
  ``shape``, ``trainable``, in ``obj.variables`` order); ``attributes``
  (which of ``variables``, ``trainable_variables``,
  ``non_trainable_variables``, ``regularization_losses`` the root has);
  ``function_attributes`` (public tf.functions of the root other than
  ``__call__``); ``num_regularization_losses`` (when it has the attribute);
  ``assets`` (when any); ``has_tfhub_module_pb``.
- Per model: ``batch_norm_momentum``, ``moving_statistics`` (variable
  names), ``exporter``, ``keras_metadata``, ``vocab_size``; for the BERT
  pair ``seq_length``, ``special_tokens`` (token -> id), ``encoder`` /
  ``preprocessor`` (the other half), ``num_layers``, ``hidden_size``.
- ``op_libraries`` (``["tensorflow_text"]``) and ``non_core_ops`` (the op
  types of the graph that core TensorFlow does not register), only for
  models that need an op library.
- ``cases``: ``id``, ``api`` (``call``, ``signature``,
  ``regularization_losses``, or ``function`` for another tf.function
  attribute, named by ``function``, with keyword ``arguments``),
  ``tf_mode``, ``training`` (``call``), ``signature``, ``call`` (the
  expression that made the golden), ``note``, ``inputs`` / ``outputs`` /
  ``state_after`` (``{name: {key, dtype, shape}}``, ``key`` indexing the
  ``.npz``), ``values`` (``regularization_losses``), ``check``
  (``allclose`` or ``shape`` for random outputs), and where a call does not
  take or return one tensor: ``input_structure`` (``dict``,
  ``ragged_segments``), ``output_structure`` (``dict``, ``ragged``) and
  ``stacked_lists`` (see ``tf2_goldens``).

Command line (what :func:`build` runs; ``verify`` also works on other
stacks, e.g. TF 2.15 with tensorflow_text 2.15)::

  python tests/models/tf2_saved_model.py write PART STAGING
  python tests/models/tf2_saved_model.py ops PART STAGING
  python tests/models/tf2_saved_model.py record PART STAGING
  python tests/models/tf2_saved_model.py verify PART [--only NAME,...]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
  sys.path.insert(0, HERE)

# pylint: disable=g-import-not-at-top,wrong-import-position
import common

FIXTURES = ("tf2_image_bn_reusable", "tf2_signatures_only",
            "tf2_text_vocab_asset", "tf2_keras_savedmodel",
            "tf2_bert_preprocess", "tf2_bert_encoder")
"""In build order: the encoder's goldens use the preprocessor."""

OP_LIBRARY = "tensorflow_text"
STATIC_FILE = "static.json"
OPS_FILE = "ops.json"

STEP_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "KERAS_BACKEND": "tensorflow",
    # `keras` must be Keras 3 and `tf_keras` the legacy one, whatever the
    # caller's environment says.
    "TF_USE_LEGACY_KERAS": "0",
    "PYTHONHASHSEED": "0",
}


class VerificationError(AssertionError):
  """A rebuilt or reloaded model does not reproduce its manifest."""


def _step(command: str, *args: str) -> None:
  """Runs ``python tf2_saved_model.py COMMAND ARGS`` in a fresh process."""
  common.run_fresh([os.path.abspath(__file__), command, *args], env=STEP_ENV)


def build(part_dir: str) -> None:
  """Builds, records and verifies every TF2 model into ``part_dir``.

  Args:
    part_dir: an empty, existing folder. On return it holds ``NAME/``,
      ``NAME.tar.gz`` and ``goldens/NAME.npz`` per fixture, and
      ``manifest.json`` (paths relative to ``part_dir``).

  Raises:
    subprocess.CalledProcessError: a step failed (its traceback is on
      stderr); ``part_dir`` is then incomplete and must not be used.
  """
  part_dir = os.path.abspath(part_dir)
  started = time.monotonic()
  with tempfile.TemporaryDirectory(prefix="tf2_models-") as staging:
    for command in ("write", "ops", "record"):
      _step(command, part_dir, staging)
  _step("verify", part_dir)
  print(f"tf2_saved_model: built {len(FIXTURES)} models in {part_dir} in "
        f"{time.monotonic() - started:.0f}s")


# -- steps --------------------------------------------------------------------

def write_models(part_dir: str, staging: str) -> None:
  """Step 1: writes every model folder and ``STAGING/static.json``.

  Args:
    part_dir: the part folder.
    staging: a scratch folder shared by the steps.
  """
  import tensorflow as tf
  if not tf.executing_eagerly():
    raise RuntimeError("the models must be written in TF2 eager mode")
  import tf2_bert
  import tf2_writers
  writers = dict(tf2_writers.WRITERS)
  writers["tf2_bert_preprocess"] = tf2_bert.write_preprocess
  writers["tf2_bert_encoder"] = tf2_bert.write_encoder
  needs_scratch = set(tf2_writers.NEEDS_SCRATCH) | {"tf2_bert_preprocess"}
  static = {}
  for name in FIXTURES:
    folder = os.path.join(part_dir, name)
    if name in needs_scratch:
      scratch = os.path.join(staging, "scratch", name)
      os.makedirs(scratch)
      static[name] = writers[name](folder, scratch)
    else:
      static[name] = writers[name](folder)
  with open(os.path.join(staging, STATIC_FILE), "w") as f:
    json.dump(static, f, indent=1, sort_keys=True)


def graph_op_names(path: str) -> List[str]:
  """The op types used in a SavedModel's graph and function library.

  Args:
    path: the model folder.

  Returns:
    The sorted op type names (calls of library functions left out).
  """
  from tensorflow.core.protobuf import saved_model_pb2
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
  names = set()
  for meta_graph in proto.meta_graphs:
    library = meta_graph.graph_def.library
    functions = {f.signature.name for f in library.function}
    names.update(n.op for n in meta_graph.graph_def.node)
    for function in library.function:
      names.update(n.op for n in function.node_def)
    names -= functions
  return sorted(names)


def list_non_core_ops(part_dir: str, staging: str) -> None:
  """Step 2: ops core TensorFlow lacks, per model, into ``ops.json``.

  Runs in a process that has not imported any op library, so the op
  registry holds TensorFlow's own ops only.

  Args:
    part_dir: the part folder.
    staging: the scratch folder shared by the steps.

  Raises:
    RuntimeError: an op library is already loaded.
  """
  import tensorflow as tf  # pylint: disable=unused-import
  from tensorflow.python.framework import op_def_registry
  if OP_LIBRARY in sys.modules:
    raise RuntimeError(f"{OP_LIBRARY} is imported; the core op registry "
                       "cannot be told apart")
  missing = {name: [op for op in graph_op_names(os.path.join(part_dir, name))
                    if op_def_registry.get(op) is None]
             for name in FIXTURES}
  with open(os.path.join(staging, OPS_FILE), "w") as f:
    json.dump(missing, f, indent=1, sort_keys=True)


def _versions() -> str:
  """The libraries that made and recorded the models."""
  import importlib.metadata as metadata
  import numpy as np
  import tensorflow as tf
  parts = [f"tensorflow {tf.__version__}"]
  for package in ("tensorflow-hub", "keras", "tf-keras", "tensorflow-text"):
    try:
      parts.append(f"{package} {metadata.version(package)}")
    except metadata.PackageNotFoundError:
      pass
  parts.append(f"numpy {np.__version__}")
  return ", ".join(parts)


def record_models(part_dir: str, staging: str) -> None:
  """Step 3: goldens, archives and ``manifest.json``.

  Args:
    part_dir: the part folder with the written models.
    staging: the scratch folder with ``static.json`` and ``ops.json``.
  """
  import tf2_goldens
  tf2_goldens.import_tensorflow_text()
  with open(os.path.join(staging, STATIC_FILE)) as f:
    static = json.load(f)
  with open(os.path.join(staging, OPS_FILE)) as f:
    non_core_ops = json.load(f)
  versions = _versions()
  entries = []
  for name in FIXTURES:
    path = os.path.join(part_dir, name)
    goldens = common.Goldens()
    description, cases = tf2_goldens.record_fixture(
        path, tf2_goldens.LOADERS[name], tf2_goldens.PLANS[name](part_dir),
        goldens)
    entry: Dict[str, Any] = {
        "name": name, "format": "tf2_saved_model",
        "provenance": (f"Made and recorded with {versions} in eager mode by "
                       "tests/models/tf2_saved_model.py."),
    }
    entry.update(static[name])
    entry.update(description)
    if non_core_ops[name]:
      entry["op_libraries"] = [OP_LIBRARY]
      entry["non_core_ops"] = non_core_ops[name]
    entry["cases"] = cases
    entries.append(common.finish_fixture(part_dir, entry, goldens))
  common.write_manifest(part_dir, versions, entries)


def _extract(archive: str, folder: str) -> str:
  """Extracts a model archive (members are checked to stay inside)."""
  with tarfile.open(archive, "r:gz") as tar:
    for member in tar.getmembers():
      target = os.path.realpath(os.path.join(folder, member.name))
      if not target.startswith(os.path.realpath(folder) + os.sep) and (
          target != os.path.realpath(folder)):
        raise VerificationError(f"{archive}: member {member.name!r} leaves "
                                "the folder")
    if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
      tar.extractall(folder, filter="data")
    else:
      tar.extractall(folder)
  return folder


def verify_models(part_dir: str, only: Optional[Sequence[str]] = None) -> None:
  """Step 4: reloads every model and re-runs every case.

  Each model is checked from its folder and from its archive (extracted to
  a temporary folder), with ``tf.saved_model.load`` after importing
  tensorflow_text (when installed), against ``manifest.json``.

  Args:
    part_dir: the built part.
    only: fixture names to check (default: all in the manifest).

  Raises:
    VerificationError: something is not reproduced.
  """
  import numpy as np
  import tensorflow as tf
  import tf2_goldens
  tf2_goldens.import_tensorflow_text(required=False)
  with open(os.path.join(part_dir, "manifest.json")) as f:
    manifest = json.load(f)
  entries = [e for e in manifest["fixtures"] if not only or e["name"] in only]
  if only and len(entries) != len(set(only)):
    raise VerificationError(f"not in the manifest: {sorted(only)}")
  checked = 0
  for entry in entries:
    name = entry["name"]
    path = os.path.join(part_dir, entry["path"])
    archive = os.path.join(part_dir, entry["archive"])
    if common.sha256_of(archive) != entry["archive_sha256"]:
      raise VerificationError(f"{archive}: SHA-256 differs from the manifest")
    if common.file_listing(path) != entry["files"]:
      raise VerificationError(f"{path}: files differ from the manifest")
    with np.load(os.path.join(part_dir, entry["golden"]),
                 allow_pickle=False) as golden:
      with tempfile.TemporaryDirectory() as extracted:
        for source in (path, _extract(archive, extracted)):
          try:
            checked += tf2_goldens.verify_fixture(source, entry, golden)
          except AssertionError as e:
            raise VerificationError(str(e)) from e
  print(f"tf2_saved_model: verified {checked} cases of {len(entries)} "
        f"models (folder and archive) with TensorFlow {tf.__version__}")


def main(argv: Optional[Sequence[str]] = None) -> None:
  """The command line (see the module docstring)."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  for command in ("write", "ops", "record"):
    step = sub.add_parser(command)
    step.add_argument("part_dir")
    step.add_argument("staging")
  verify = sub.add_parser("verify")
  verify.add_argument("part_dir")
  verify.add_argument("--only", default="",
                      help="comma-separated fixture names")
  args = parser.parse_args(argv)
  part_dir = os.path.abspath(args.part_dir)
  if args.command == "write":
    write_models(part_dir, args.staging)
  elif args.command == "ops":
    list_non_core_ops(part_dir, args.staging)
  elif args.command == "record":
    record_models(part_dir, args.staging)
  else:
    verify_models(part_dir, [n for n in args.only.split(",") if n] or None)


if __name__ == "__main__":
  main()
