"""The TF2 (eager) steps of the TF1 Hub generator: the modules under hub.load.

Each public function runs in its own fresh interpreter (see ``tf1_hub.py``)
with TensorFlow's default TF2 behaviour:

- :func:`record_all` loads each exported module with the real ``hub.load``
  once per tag set (what ``hub.load`` shows: signatures, variables) and
  records the golden outputs of every ``hub.load.signatures`` case;
- :func:`verify_all` reloads each module and checks that every
  ``hub.load.signatures`` golden of the written manifest comes out again.

Sparse and ragged inputs appear in ``hub.load``'s signatures as separate
component arguments (``NAME_indices``, ``NAME_values``, ``NAME_dense_shape``;
``NAME_component_0`` ...); the cases store each component under that name,
so a case is always called as ``signatures[signature](**inputs)``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Mapping, Sequence

import numpy as np

import tf1_graph_mode
import tf1_modules

CALL = "hub.load(path, tags=set(tags)).signatures[signature](**inputs)"


def _eager_mode():
  """Imports TF and tensorflow_hub, checking TF2 behaviour is on.

  Returns:
    ``(tensorflow, tensorflow_hub)``.

  Raises:
    RuntimeError: TensorFlow does not execute eagerly.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.executing_eagerly():
    raise RuntimeError("the hub.load steps need TF2 behaviour")
  return tf, tf1_modules.import_hub()


def run_load_case(tf, hub, path: str, tags: Sequence[str], signature: str,
                  inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Calls one signature of a freshly loaded module.

  Args:
    tf: the tensorflow module (TF2 behaviour).
    hub: the tensorflow_hub module.
    path: the module folder.
    tags: the graph variant to load.
    signature: the signature to call.
    inputs: the arguments by name (components for sparse/ragged inputs).

  Returns:
    The outputs as arrays.
  """
  loaded = hub.load(path, tags=set(tags))
  outputs = loaded.signatures[signature](
      **{k: tf.constant(tf1_graph_mode.tf_value(v)) for k, v in inputs.items()})
  return {k: v.numpy() for k, v in outputs.items()}


def _spec_record(spec) -> Dict[str, Any]:
  """``{"dtype", "shape"}`` of a TensorSpec or tensor (None: unknown rank)."""
  shape = spec.shape
  return {"dtype": spec.dtype.name,
          "shape": None if shape.rank is None else shape.as_list()}


def _view(hub, path: str, tags: Sequence[str]) -> Dict[str, Any]:
  """Describes what ``hub.load`` shows of one graph variant.

  Args:
    hub: the tensorflow_hub module.
    path: the module folder.
    tags: the graph variant.

  Returns:
    ``has_call``, ``signatures`` (argument and output specs), ``tags`` and
    the sorted ``variables`` names.
  """
  loaded = hub.load(path, tags=set(tags))
  signatures = {}
  for name, function in loaded.signatures.items():
    signatures[name] = {
        "inputs": {k: _spec_record(v) for k, v in
                   function.structured_input_signature[1].items()},
        "outputs": {k: _spec_record(v) for k, v in
                    function.structured_outputs.items()},
    }
  return {"has_call": hasattr(loaded, "__call__"),
          "signatures": signatures, "tags": sorted(tags),
          # A partitioned variable is listed twice (the restored variable
          # and its graph-side copy); the view lists each name once.
          "variables": sorted({v.name for v in loaded.variables})}


def record_all(part_dir: str) -> None:
  """Records the hub.load view and goldens of every module.

  Writes ``part_dir/.work/load.json`` and ``part_dir/.work/load.npz``
  (arrays keyed ``MODULE/GOLDEN_KEY``).

  Args:
    part_dir: the part folder holding the exported modules.

  Raises:
    AssertionError: a case's arguments are not the signature's.
  """
  tf, hub = _eager_mode()
  with open(os.path.join(part_dir, ".work", "module.json")) as f:
    module_results = json.load(f)
  results, arrays = {}, {}
  for recipe in tf1_modules.recipes():
    path = os.path.join(part_dir, recipe.name)
    tag_sets = module_results[recipe.name]["tag_sets"]
    views = [_view(hub, path, tags) for tags in tag_sets]
    cases = {}
    for case in recipe.cases:
      if case.api != "hub.load.signatures":
        continue
      view = next(v for v in views if v["tags"] == sorted(case.tags))
      arguments = sorted(view["signatures"][case.signature]["inputs"])
      if sorted(case.inputs) != arguments:
        raise AssertionError(f"{recipe.name}/{case.case_id}: inputs "
                             f"{sorted(case.inputs)}, arguments {arguments}")
      outputs = run_load_case(tf, hub, path, case.tags, case.signature,
                              case.inputs)
      for key, value in outputs.items():
        arrays[f"{recipe.name}/{case.case_id}/out/{key}"] = value
      cases[case.case_id] = {"outputs": sorted(outputs)}
    results[recipe.name] = {"tf2_hub_load_view": views, "cases": cases}
  work = os.path.join(part_dir, ".work")
  with open(os.path.join(work, "load.json"), "w") as f:
    json.dump(results, f, indent=1, sort_keys=True)
  np.savez(os.path.join(work, "load.npz"), **arrays)


def verify_all(part_dir: str) -> None:
  """Re-runs, with hub.load, every ``hub.load.signatures`` golden.

  Args:
    part_dir: the finished part folder.

  Raises:
    AssertionError: a value does not come out again, or hub.load's view of
      a module changed.
  """
  tf, hub = _eager_mode()
  with open(os.path.join(part_dir, "manifest.json")) as f:
    entries = json.load(f)["fixtures"]
  checked = 0
  for entry in entries:
    path = os.path.join(part_dir, entry["path"])
    golden = np.load(os.path.join(part_dir, entry["golden"]),
                     allow_pickle=False)
    for view in entry["tf2_hub_load_view"]:
      if _view(hub, path, view["tags"]) != view:
        raise AssertionError(f"{entry['name']}: hub.load view of "
                             f"{view['tags']} changed")
    for case in entry["cases"]:
      if case["api"] != "hub.load.signatures":
        continue
      outputs = run_load_case(
          tf, hub, path, case["tags"], case["signature"],
          tf1_graph_mode.golden_arrays(golden, case["inputs"]))
      tf1_graph_mode.check_outputs(
          f"{entry['name']}/{case['id']}", entry, case, outputs,
          tf1_graph_mode.golden_arrays(golden, case["outputs"]))
      checked += 1
  print(f"verified {checked} hub.load.signatures cases")
