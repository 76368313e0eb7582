"""Builds the TF1 Hub half of the test models (the ``tf1_hub`` part).

Runs under the TF 2.15 environment (tensorflow_hub 0.15.0, which still has
``hub.Module`` and ``hub.create_module_spec``). :func:`build` writes into a
part folder the seven modules of ``tf1_modules.recipes()``, each as a folder,
a ``.tar.gz`` archive and ``goldens/NAME.npz``, and their ``manifest.json``.

Every step that needs TensorFlow runs in a fresh interpreter
(``common.run_fresh``), so the caller's process never imports TensorFlow and
no state leaks from one step into another:

1. ``export``: build each module in TF1 compat mode and ``hub.Module.export``
   it (``tf1_graph_mode.export_all``);
2. ``record-module``: record, with the real ``hub.Module`` in TF1 compat mode,
   the goldens of the ``hub.Module`` cases, the signatures, variables,
   collections, fine-tuning step and attachments
   (``tf1_graph_mode.record_all``);
3. ``record-load``: record, with the real ``hub.load`` in TF2 (eager) mode,
   the goldens of the ``hub.load.signatures`` cases and what ``hub.load``
   shows (``tf1_eager_mode.record_all``);
4. this process assembles the manifest entries, golden files and archives;
5. ``verify-module`` and ``verify-load``: reload every module and check that
   each golden of the written manifest comes out again.

The entries follow the schema of the shared fixtures' TF1 entries, plus:

- ``variables[].reference_variable``: the variable is a ``VariableV2`` op;
- ``variable_op_types``, ``control_flow`` (``none``/``v1``/``v2``) and
  ``control_flow_ops``: what the exported graphs contain;
- ``signatures[..][..].is_sparse`` (and ``ragged_rank`` for ragged tensors);
- ``sparse_inputs`` / ``ragged_inputs``: composite-tensor inputs and the
  argument names ``hub.load``'s signatures give their components;
- ``cases[].composite_inputs``: ``{input: {"type": "sparse"|"ragged",
  "dtype", "components": {part: array name}}}``. Such a case stores each
  component under the name ``hub.load`` uses for it (``ids_indices``,
  ``ids_values``, ``ids_dense_shape``; ``ids_component_0`` = values,
  ``ids_component_1`` = row splits), for ``hub.Module`` cases too;
- ``cases[].call``: how the real library was called;
- ``finetune.tags``; ``finetune`` also for ``tf1_refvar_lstm``.

Command line (each step alone, or all of them)::

  python tests/models/tf1_hub.py build PART_DIR
  python tests/models/tf1_hub.py {export,record-module,record-load,
                                  verify-module,verify-load} PART_DIR
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from typing import Any, Dict, List, Mapping

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
  sys.path.insert(0, _HERE)

import common  # pylint: disable=g-import-not-at-top,wrong-import-position
import tf1_modules  # pylint: disable=g-import-not-at-top,wrong-import-position

MAX_PART_BYTES = 2_500_000
FINETUNE_TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}
STEP_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0",
            "CUDA_VISIBLE_DEVICES": ""}


def _call_of(case: "tf1_modules.CaseSpec") -> str:
  """Says how the real library was called for a case.

  Args:
    case: the case.

  Returns:
    The manifest's ``call`` string: the Python expression, with how sparse
    and ragged inputs were fed.
  """
  if case.api == "hub.load.signatures":
    if case.composite_inputs:
      arguments = ", ".join(f"{k}=inputs[{k!r}]" for k in sorted(case.inputs))
      return (f"hub.load(path, tags=set(tags)).signatures[signature]"
              f"({arguments})")
    return "hub.load(path, tags=set(tags)).signatures[signature](**inputs)"
  feeds = []
  for name, record in sorted((case.composite_inputs or {}).items()):
    parts = record["components"]
    if record["type"] == "sparse":
      feeds.append(f"inputs[{name!r}] = tf.compat.v1.sparse.placeholder("
                   f"tf.{record['dtype']}, [None, None]) fed "
                   f"tf.compat.v1.SparseTensorValue({parts['indices']}, "
                   f"{parts['values']}, {parts['dense_shape']})")
    else:
      feeds.append(f"inputs[{name!r}] = tf.compat.v1.ragged.placeholder("
                   f"tf.{record['dtype']}, {record['ragged_rank']}, []) fed "
                   f"tf.compat.v1.ragged.RaggedTensorValue("
                   f"{parts['values']}, {parts['row_splits']})")
  module = ("hub.Module(path, trainable=True, tags=set(tags))"
            if case.state_variables else "hub.Module(path, tags=set(tags))")
  steps = feeds + [f"outputs = {module}(inputs, signature=signature, "
                   "as_dict=True)"]
  if case.state_variables:
    steps.append("session.run(outputs); session.run(UPDATE_OPS) once; "
                 "read the variables")
  return "; ".join(steps)


def _case_entry(case: "tf1_modules.CaseSpec", goldens: "common.Goldens",
                outputs: Mapping[str, np.ndarray],
                state: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """Makes the manifest record of one case and stores its arrays.

  Args:
    case: the case.
    goldens: receives the input, output and state arrays.
    outputs: the recorded outputs.
    state: the recorded variables (``hub.Module.update_ops`` cases).

  Returns:
    The case record.
  """
  entry = {"id": case.case_id, "api": case.api, "tf_mode": case.tf_mode,
           "tags": list(case.tags), "signature": case.signature,
           "call": _call_of(case)}
  if case.note:
    entry["note"] = case.note
  if case.composite_inputs:
    entry["composite_inputs"] = case.composite_inputs
  if case.state_variables:
    entry["trainable"] = True
    entry["description"] = (
        f"hub.Module(trainable=True, tags={set(case.tags)!r}); apply the "
        "signature once; sess.run(UPDATE_OPS) once; read variables")
  entry["inputs"] = goldens.record(f"{case.case_id}/in", case.inputs)
  if case.state_variables:
    entry["state_after"] = goldens.record(f"{case.case_id}/state", state)
  else:
    entry["outputs"] = goldens.record(f"{case.case_id}/out", outputs)
  entry["check"] = case.check
  return entry


def _finetune_entry(recipe: "tf1_modules.Recipe", record: Mapping[str, Any],
                    arrays: Mapping[str, np.ndarray],
                    goldens: "common.Goldens") -> Dict[str, Any]:
  """Makes the manifest's ``finetune`` record and stores its arrays.

  Args:
    recipe: the module's recipe (its ``finetune`` spec).
    record: the numbers the ``record-module`` step wrote.
    arrays: the step's arrays (``NAME/finetune/{before,after}/VARIABLE``).
    goldens: receives the input and the variable values.

  Returns:
    The record, in the schema of the shared fixtures' one.
  """
  spec = recipe.finetune
  prefix = f"{recipe.name}/finetune"
  before = {k[len(prefix) + 8:]: arrays[k] for k in arrays
            if k.startswith(prefix + "/before/")}
  after = {k[len(prefix) + 7:]: arrays[k] for k in arrays
           if k.startswith(prefix + "/after/")}
  changed = sorted(k for k in before if not np.array_equal(before[k],
                                                          after[k]))
  (input_spec,) = goldens.record(
      "finetune/in", {spec.input_name: spec.input_value}).values()
  return {
      "api": f"hub.Module(path, trainable=True, tags={set(spec.tags)!r})",
      "changed_variables": changed,
      "input": input_spec,
      "loss": (f"tf.reduce_mean(tf.square(module({spec.input_name}))) + "
               "tf.add_n(tf.compat.v1.losses.get_regularization_losses())"),
      "loss_after": record["loss_after"],
      "loss_before": record["loss_before"],
      "num_regularization_losses": record["num_regularization_losses"],
      "num_update_ops": record["num_update_ops"],
      "optimizer": (f"tf.compat.v1.train.GradientDescentOptimizer("
                    f"{spec.learning_rate}).minimize(loss)"),
      "procedure": ("init variables and tables; loss_before = run(loss); "
                    "run(train_op) once; read variables; "
                    "loss_after = run(loss)"),
      "signature": spec.signature,
      "tags": list(spec.tags),
      "tf_mode": "tf1_compat",
      "tolerance": dict(FINETUNE_TOLERANCE),
      "trainable_variables": record["trainable_variables"],
      "update_ops": ("train_op created under tf.control_dependencies("
                     "tf.compat.v1.get_collection(UPDATE_OPS))"),
      "variables_after": goldens.record("finetune/after", after),
      "variables_before": goldens.record("finetune/before", before),
  }


def _control_flow(facts: Mapping[str, Any]) -> str:
  """Names the kind of control flow a module's graphs use.

  Args:
    facts: the module's graph facts (op types per graph variant).

  Returns:
    ``v2`` (functional While/If ops), ``v1`` (Enter/Exit/Switch/Merge...)
    or ``none``.
  """
  ops = {op for fact in facts.values() for op in fact["control_flow_ops"]}
  if ops & {"While", "StatelessWhile", "If", "StatelessIf"}:
    return "v2"
  return "v1" if ops else "none"


def _check_module_against_load(name: str, cases, outputs,
                               tolerance: Mapping[str, float]) -> None:
  """Checks hub.Module and hub.load agree where they ran the same inputs.

  Args:
    name: the module's name (for the error).
    cases: the recipe's cases; ``tf1_X`` and ``tf2_hubload_X`` are twins.
    outputs: ``{"module": {case id: outputs}, "load": {...}}``.
    tolerance: ``rtol`` and ``atol``.

  Raises:
    AssertionError: twin deterministic cases differ.
  """
  ids = {case.case_id for case in cases}
  for case in cases:
    if case.api != "hub.Module" or case.check != "allclose":
      continue
    twin_id = "tf2_hubload_" + case.case_id[len("tf1_"):]
    if twin_id not in ids:
      continue
    for key, value in outputs["module"][case.case_id].items():
      np.testing.assert_allclose(
          outputs["load"][twin_id][key], value,
          err_msg=f"{name}: {twin_id} vs {case.case_id} ({key})", **tolerance)


def assemble(part_dir: str) -> List[Dict[str, Any]]:
  """Writes goldens, archives and the manifest from the recorded steps.

  Args:
    part_dir: the part folder with the exported modules and ``.work/``.

  Returns:
    The manifest entries.

  Raises:
    AssertionError: hub.Module and hub.load disagree on a golden.
  """
  work = os.path.join(part_dir, ".work")
  with open(os.path.join(work, "export.json")) as f:
    export = json.load(f)
  with open(os.path.join(work, "module.json")) as f:
    module_results = json.load(f)
  with open(os.path.join(work, "load.json")) as f:
    load_results = json.load(f)
  with np.load(os.path.join(work, "module.npz")) as data:
    module_arrays = {k: data[k] for k in data.files}
  with np.load(os.path.join(work, "load.npz")) as data:
    load_arrays = {k: data[k] for k in data.files}

  entries = []
  for recipe in tf1_modules.recipes():
    recorded = module_results[recipe.name]
    loaded = load_results[recipe.name]
    facts = export["graph_facts"][recipe.name]
    goldens = common.Goldens()
    outputs = {"module": {}, "load": {}}
    cases = []
    for case in recipe.cases:
      source, results, arrays = (
          ("load", loaded, load_arrays) if case.api == "hub.load.signatures"
          else ("module", recorded, module_arrays))
      prefix = f"{recipe.name}/{case.case_id}"
      stored = results["cases"][case.case_id]
      case_outputs = {k: arrays[f"{prefix}/out/{k}"]
                      for k in stored["outputs"]}
      state = {k: arrays[f"{prefix}/state/{k}"]
               for k in stored.get("state_after", [])}
      outputs[source][case.case_id] = case_outputs
      cases.append(_case_entry(case, goldens, case_outputs, state))
    entry = {
        "name": recipe.name,
        "kind": recipe.kind,
        "format": "tf1_hub",
        "description": recipe.description,
        "provenance": tf1_modules.PROVENANCE,
        "tag_sets": recorded["tag_sets"],
        "auto_signature": recorded["auto_signature"],
        "signatures": recorded["signatures"],
        "signatures_same_for_all_tag_sets": True,
        "has_tfhub_module_pb": os.path.isfile(
            os.path.join(part_dir, recipe.name, "tfhub_module.pb")),
        "variables": recorded["variables"],
        "variable_op_types": sorted({op for fact in facts.values()
                                     for op in fact["variable_ops"]}),
        "control_flow": _control_flow(facts),
        "control_flow_ops": sorted({op for fact in facts.values()
                                    for op in fact["control_flow_ops"]}),
        "tf2_hub_load_view": loaded["tf2_hub_load_view"],
    }
    entry.update(recipe.fields)
    for key in ("collections", "attached_messages", "image_helpers"):
      if key in recorded:
        entry[key] = recorded[key]
    if recipe.finetune:
      entry["finetune"] = _finetune_entry(recipe, recorded["finetune"],
                                          module_arrays, goldens)
    entry["cases"] = cases
    entry["tolerance"] = dict(common.TOLERANCE)
    _check_module_against_load(recipe.name, recipe.cases, outputs,
                               entry["tolerance"])
    common.finish_fixture(part_dir, entry, goldens,
                          dot_prefix=recipe.dot_prefix)
    entries.append(entry)
  versions = export["versions"]
  common.write_manifest(
      part_dir,
      f"tensorflow {versions['tensorflow']}, tensorflow-hub "
      f"{versions['tensorflow_hub']}, numpy {versions['numpy']} "
      "(tests/models/tf1_hub.py)",
      entries)
  return entries


def check_archives(part_dir: str, entries) -> None:
  """Checks each archive extracts to exactly its folder.

  Args:
    part_dir: the part folder.
    entries: the manifest entries.

  Raises:
    AssertionError: an archive's members or bytes differ from the folder.
  """
  for entry in entries:
    archive = os.path.join(part_dir, entry["archive"])
    dot_prefix = tf1_modules.recipe(entry["name"]).dot_prefix
    with tarfile.open(archive) as tar, tempfile.TemporaryDirectory() as out:
      names = tar.getnames()
      if any(n.startswith("./") for n in names) != dot_prefix:
        raise AssertionError(f"{archive}: member names {names[:3]}...")
      tar.extractall(out, filter="data")
      folder = os.path.join(part_dir, entry["path"])
      listing = common.file_listing(out)
      if listing != common.file_listing(folder):
        raise AssertionError(f"{archive}: files differ from {folder}")
      for item in listing:
        if not filecmp.cmp(os.path.join(out, item["path"]),
                           os.path.join(folder, item["path"]), shallow=False):
          raise AssertionError(f"{archive}: {item['path']} differs")


def part_bytes(part_dir: str) -> int:
  """Adds up the sizes of all files in the part folder."""
  return sum(os.path.getsize(os.path.join(root, name))
             for root, _, names in os.walk(part_dir) for name in names)


def _step(command: str, part_dir: str) -> None:
  """Runs one step of this file's command line in a fresh interpreter."""
  common.run_fresh([os.path.abspath(__file__), command, part_dir],
                   env=STEP_ENV)


def build(part_dir: str) -> None:
  """Builds, records, assembles and verifies the TF1 Hub part.

  Args:
    part_dir: an existing empty folder; receives one folder, archive and
      golden file per module and ``manifest.json``.

  Raises:
    ValueError: ``part_dir`` is not an empty folder.
    AssertionError: a golden does not reproduce, a module lacks what its
      recipe promises, or the part is too large.
    subprocess.CalledProcessError: a step failed.
  """
  part_dir = os.path.abspath(part_dir)
  if not os.path.isdir(part_dir) or os.listdir(part_dir):
    raise ValueError(f"{part_dir} must be an existing empty folder")
  started = time.time()
  for command in ("export", "record-module", "record-load"):
    _step(command, part_dir)
  entries = assemble(part_dir)
  shutil.rmtree(os.path.join(part_dir, ".work"))
  check_archives(part_dir, entries)
  for command in ("verify-module", "verify-load"):
    _step(command, part_dir)
  size = part_bytes(part_dir)
  if size > MAX_PART_BYTES:
    raise AssertionError(f"the tf1_hub part has {size} bytes, more than "
                         f"{MAX_PART_BYTES}")
  print(f"tf1_hub part: {len(entries)} modules, {size} bytes, "
        f"{time.time() - started:.0f} s")


def main(argv=None) -> None:
  """Runs one step, or ``build`` for all of them (see the module docstring).

  Args:
    argv: the arguments (default: ``sys.argv[1:]``).
  """
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("command", choices=("build", "export", "record-module",
                                          "record-load", "verify-module",
                                          "verify-load"))
  parser.add_argument("part_dir")
  args = parser.parse_args(argv)
  if args.command == "build":
    build(args.part_dir)
  elif args.command in ("export", "record-module", "verify-module"):
    import tf1_graph_mode  # pylint: disable=g-import-not-at-top
    {"export": tf1_graph_mode.export_all,
     "record-module": tf1_graph_mode.record_all,
     "verify-module": tf1_graph_mode.verify_all}[args.command](args.part_dir)
  else:
    import tf1_eager_mode  # pylint: disable=g-import-not-at-top
    {"record-load": tf1_eager_mode.record_all,
     "verify-load": tf1_eager_mode.verify_all}[args.command](args.part_dir)


if __name__ == "__main__":
  main()
