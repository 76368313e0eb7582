"""The TF1 compat mode steps of the TF1 Hub generator (tensorflow_hub 0.15).

Each public function runs in its own fresh interpreter (see ``tf1_hub.py``)
and starts by switching the process to TF1 compat mode:

- :func:`export_all` builds every module of ``tf1_modules.recipes()`` with
  ``hub.create_module_spec`` and writes it with ``hub.Module.export`` (then
  makes ``saved_model.pb`` reproducible: fixed table shared names and
  deterministic map order);
- :func:`record_all` applies each module with the real ``hub.Module`` and
  records its golden outputs and everything else the manifest says about it
  (signatures, variables, collections, fine-tuning, attachments);
- :func:`verify_all` reloads each module and checks that every ``hub.Module``
  golden, update-ops state and fine-tuning record of the written manifest
  comes out again.
"""
from __future__ import annotations

import base64
import json
import os
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import tf1_modules

# Ops of TF1 (v1) control flow and of its TF2 (v2) replacement.
V1_CONTROL_FLOW_OPS = frozenset({"Enter", "Exit", "LoopCond", "Merge",
                                 "NextIteration", "Switch", "RefEnter",
                                 "RefExit", "RefMerge", "RefSwitch",
                                 "RefNextIteration"})
V2_CONTROL_FLOW_OPS = frozenset({"While", "StatelessWhile", "If",
                                 "StatelessIf", "Case", "StatelessCase"})
# Ops that create lookup tables (their shared_name is made reproducible).
TABLE_OPS = frozenset({"HashTable", "HashTableV2", "MutableHashTable",
                       "MutableHashTableV2", "MutableDenseHashTable",
                       "MutableDenseHashTableV2", "MutableHashTableOfTensors",
                       "MutableHashTableOfTensorsV2"})


def _graph_mode():
  """Switches this process to TF1 compat mode (graph mode, v1 control flow).

  Returns:
    ``(tensorflow, tensorflow_hub)``.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.compat.v1.disable_v2_behavior()
  tf.compat.v1.disable_control_flow_v2()
  return tf, tf1_modules.import_hub()


def tf_value(array: np.ndarray) -> np.ndarray:
  """Converts a golden array to what TF takes.

  Args:
    array: a golden array (strings are numpy unicode).

  Returns:
    The array, with unicode strings as an object array of UTF-8 bytes.
  """
  array = np.asarray(array)
  if array.dtype.kind == "U":
    return np.char.encode(array, "utf-8").astype(object)
  return array


def _module_inputs(tf, inputs: Mapping[str, np.ndarray],
                   composite_inputs: Optional[Mapping[str, Any]]
                   ) -> Tuple[Dict[str, Any], Dict[Any, Any]]:
  """Turns golden inputs into what hub.Module takes, plus a feed dict.

  A sparse input becomes a sparse placeholder fed a ``SparseTensorValue``;
  a ragged one a ragged placeholder fed a ``RaggedTensorValue``; other
  inputs are passed as arrays (hub.Module makes constants of them).

  Args:
    tf: the tensorflow module.
    inputs: golden arrays by name (composite inputs by component).
    composite_inputs: the case's ``composite_inputs`` record, or None.

  Returns:
    ``(module_inputs, feed_dict)``.

  Raises:
    ValueError: an unknown composite type.
  """
  arrays = {k: tf_value(v) for k, v in inputs.items()}
  module_inputs, feed_dict = {}, {}
  for name, record in (composite_inputs or {}).items():
    parts = {part: arrays.pop(key)
             for part, key in record["components"].items()}
    dtype = tf.as_dtype(record["dtype"])
    if record["type"] == "sparse":
      placeholder = tf.compat.v1.sparse.placeholder(dtype, [None, None],
                                                    name=name)
      feed_dict[placeholder] = tf.compat.v1.SparseTensorValue(
          parts["indices"], parts["values"], parts["dense_shape"])
    elif record["type"] == "ragged":
      placeholder = tf.compat.v1.ragged.placeholder(
          dtype, record["ragged_rank"], [], name=name)
      feed_dict[placeholder] = tf.compat.v1.ragged.RaggedTensorValue(
          parts["values"], parts["row_splits"])
    else:
      raise ValueError(f"unknown composite input type {record['type']!r}")
    module_inputs[name] = placeholder
  module_inputs.update(arrays)
  return module_inputs, feed_dict


def run_module_case(tf, hub, path: str, tags: Sequence[str], signature: str,
                    inputs: Mapping[str, np.ndarray],
                    composite_inputs: Optional[Mapping[str, Any]] = None,
                    state_variables: Sequence[str] = ()
                    ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
  """Applies one signature with a fresh ``hub.Module`` in a new graph.

  Args:
    tf: the tensorflow module (TF1 compat mode).
    hub: the tensorflow_hub module.
    path: the module folder.
    tags: the graph variant.
    signature: the signature to apply.
    inputs: golden input arrays.
    composite_inputs: how sparse/ragged inputs are given, or None.
    state_variables: if given, the module is trainable; after the outputs
      are computed the UPDATE_OPS run once and these variables are read.

  Returns:
    ``(outputs, state)``: output arrays by name and the variables read.
  """
  graph = tf.Graph()
  with graph.as_default():
    module = hub.Module(path, tags=set(tags),
                        trainable=bool(state_variables))
    module_inputs, feed_dict = _module_inputs(tf, inputs, composite_inputs)
    outputs = module(module_inputs, signature=signature, as_dict=True)
    update_ops = tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.UPDATE_OPS)
    with tf.compat.v1.Session(graph=graph) as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
      values = session.run(outputs, feed_dict)
      state = {}
      if state_variables:
        if not update_ops:
          raise AssertionError(f"{path}: no UPDATE_OPS for {signature}")
        session.run(update_ops, feed_dict)
        state = session.run({k: module.variable_map[k]
                             for k in state_variables})
  return values, state


def _finetune_step(tf, hub, path: str, spec: "tf1_modules.FinetuneSpec"
                   ) -> Dict[str, Any]:
  """Runs the recorded fine-tuning procedure once.

  Args:
    tf: the tensorflow module (TF1 compat mode).
    hub: the tensorflow_hub module.
    path: the module folder.
    spec: what to fine-tune.

  Returns:
    ``loss_before``, ``loss_after``, ``before`` and ``after`` (variable
    values by variable_map name), ``trainable_variables``,
    ``num_update_ops`` and ``num_regularization_losses``.
  """
  graph = tf.Graph()
  with graph.as_default():
    module = hub.Module(path, trainable=True, tags=set(spec.tags))
    outputs = module(tf_value(spec.input_value), signature=spec.signature)
    losses = tf.compat.v1.losses.get_regularization_losses()
    loss = tf.reduce_mean(tf.square(outputs)) + tf.add_n(losses)
    update_ops = tf.compat.v1.get_collection(
        tf.compat.v1.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
      train_op = tf.compat.v1.train.GradientDescentOptimizer(
          spec.learning_rate).minimize(loss)
    trainable = sorted(v.op.name.split("/", 1)[1]
                       for v in tf.compat.v1.trainable_variables())
    variables = {name: (tf.concat(value, axis=0)
                        if isinstance(value, list) else value)
                 for name, value in module.variable_map.items()}
    with tf.compat.v1.Session(graph=graph) as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
      before = session.run(variables)
      loss_before = float(session.run(loss))
      session.run(train_op)
      after = session.run(variables)
      loss_after = float(session.run(loss))
  return {"before": before, "after": after, "loss_before": loss_before,
          "loss_after": loss_after, "trainable_variables": trainable,
          "num_update_ops": len(update_ops),
          "num_regularization_losses": len(losses)}


# --- export -------------------------------------------------------------------
def _variable_shapes(module) -> Dict[str, Tuple[int, ...]]:
  """Lists the full shape of each variable of a module.

  Args:
    module: a ``hub.Module``.

  Returns:
    Shapes by ``variable_map`` name; a partitioned variable's partitions are
    joined on axis 0 (how ``fixed_size_partitioner`` splits them).
  """
  shapes = {}
  for name, value in module.variable_map.items():
    parts = value if isinstance(value, list) else [value]
    part_shapes = [tuple(p.shape.as_list()) for p in parts]
    shapes[name] = ((sum(s[0] for s in part_shapes),) + part_shapes[0][1:]
                    if isinstance(value, list) else part_shapes[0])
  return shapes


def _write_weights(session, module, values: Mapping[str, np.ndarray]) -> None:
  """Loads the seeded values into the module's variables.

  Args:
    session: a session of the module's graph, variables initialized.
    module: the ``hub.Module``.
    values: full values by ``variable_map`` name (split here along axis 0
      for a partitioned variable).

  Raises:
    AssertionError: the values are not for exactly the module's variables.
  """
  if sorted(values) != sorted(module.variable_map):
    raise AssertionError(f"weights for {sorted(values)}, variables "
                         f"{sorted(module.variable_map)}")
  for name, value in module.variable_map.items():
    if isinstance(value, list):
      start = 0
      for part in value:
        rows = part.shape.as_list()[0]
        part.load(values[name][start:start + rows], session)
        start += rows
    else:
      value.load(values[name], session)


def _make_reproducible(saved_model_path: str, module_name: str) -> None:
  """Rewrites a saved_model.pb so that equal builds give equal bytes.

  Two things differ from build to build although the module does not:

  - a lookup table's ``shared_name`` holds a random UUID (tables from
    tensors) or the path of the vocabulary file it was created from (a
    temporary folder); it becomes ``hash_table/MODULE/TAGS/NODE``, unique
    per graph variant as before;
  - the protobuf runtime writes map fields (node attributes, signatures,
    collections) in an order that changes from process to process; the
    proto is written back with ``deterministic=True``.

  Args:
    saved_model_path: the exported ``saved_model.pb``.
    module_name: the module's name, part of the new shared names.
  """
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved_model = saved_model_pb2.SavedModel()
  with open(saved_model_path, "rb") as f:
    saved_model.ParseFromString(f.read())
  for meta_graph in saved_model.meta_graphs:
    tags = ",".join(sorted(meta_graph.meta_info_def.tags)) or "-"
    for node in meta_graph.graph_def.node:
      if node.op in TABLE_OPS and node.attr["shared_name"].s:
        node.attr["shared_name"].s = (
            f"hash_table/{module_name}/{tags}/{node.name}".encode())
  with open(saved_model_path, "wb") as f:
    f.write(saved_model.SerializeToString(deterministic=True))


def _graph_facts(saved_model_path: str) -> Dict[str, Any]:
  """Reads which variable and control-flow ops each graph variant uses.

  Args:
    saved_model_path: an exported ``saved_model.pb``.

  Returns:
    ``{"TAG,TAG": {"variable_ops": [...], "control_flow_ops": [...]}}`` with
    sorted op type names (the empty tag set is ``""``).
  """
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved_model = saved_model_pb2.SavedModel()
  with open(saved_model_path, "rb") as f:
    saved_model.ParseFromString(f.read())
  facts = {}
  for meta_graph in saved_model.meta_graphs:
    ops = [node.op for node in meta_graph.graph_def.node]
    for function in meta_graph.graph_def.library.function:
      ops.extend(node.op for node in function.node_def)
    tags = ",".join(sorted(meta_graph.meta_info_def.tags))
    facts[tags] = {
        "variable_ops": sorted({op for op in ops
                                if op in ("VariableV2", "VarHandleOp",
                                          "Variable")}),
        "control_flow_ops": sorted({op for op in ops
                                    if op in V1_CONTROL_FLOW_OPS
                                    | V2_CONTROL_FLOW_OPS}),
    }
  return facts


def _check_graph_facts(recipe: "tf1_modules.Recipe",
                       facts: Mapping[str, Any]) -> None:
  """Checks a module has the variable and control-flow ops it promises.

  Args:
    recipe: the module's recipe.
    facts: what :func:`_graph_facts` read from the export.

  Raises:
    AssertionError: reference variables where resource variables are
      expected or the other way round, or no v1 control flow where it is
      expected.
  """
  for tags, fact in facts.items():
    if recipe.expect_reference_variables and fact["variable_ops"] != [
        "VariableV2"]:
      raise AssertionError(f"{recipe.name} [{tags}]: variables are "
                           f"{fact['variable_ops']}, not VariableV2 only")
    if not recipe.expect_reference_variables and fact["variable_ops"] not in (
        ["VarHandleOp"], []):
      raise AssertionError(f"{recipe.name} [{tags}]: expected resource "
                           f"variables, got {fact['variable_ops']}")
    control_flow = set(fact["control_flow_ops"])
    if recipe.expect_v1_control_flow and (
        control_flow & V2_CONTROL_FLOW_OPS
        or not {"Enter", "Exit", "Switch", "Merge"} <= control_flow):
      raise AssertionError(f"{recipe.name} [{tags}]: control flow ops "
                           f"{sorted(control_flow)} are not v1 loops/conds")


def export_all(part_dir: str) -> None:
  """Builds and exports every module into ``part_dir/NAME``.

  Writes ``part_dir/.work/export.json`` with the graph facts of each module
  (variable and control-flow op types) and the library versions.

  Args:
    part_dir: the part folder.

  Raises:
    AssertionError: a module lacks what its recipe promises.
  """
  tf, hub = _graph_mode()
  facts = {}
  for recipe in tf1_modules.recipes():
    target = os.path.join(part_dir, recipe.name)
    with tempfile.TemporaryDirectory() as work_dir:
      module_fn = recipe.make_module_fn(hub, work_dir)
      spec = hub.create_module_spec(
          module_fn, tags_and_args=(list(recipe.tags_and_args)
                                    if recipe.tags_and_args else None))
      with tf.Graph().as_default():
        module = hub.Module(spec)
        values = recipe.weights(_variable_shapes(module))
        with tf.compat.v1.Session() as session:
          session.run(tf.compat.v1.global_variables_initializer())
          _write_weights(session, module, values)
          module.export(target, session)
    _make_reproducible(os.path.join(target, "saved_model.pb"), recipe.name)
    facts[recipe.name] = _graph_facts(os.path.join(target, "saved_model.pb"))
    _check_graph_facts(recipe, facts[recipe.name])
  versions = {"tensorflow": tf.__version__, "tensorflow_hub": hub.__version__,
              "numpy": np.__version__}
  _write_json(os.path.join(part_dir, ".work", "export.json"),
              {"graph_facts": facts, "versions": versions})


# --- record -------------------------------------------------------------------
def _info_record(info) -> Dict[str, Any]:
  """Describes one signature input or output for the manifest.

  Args:
    info: a ``hub.ParsedTensorInfo``.

  Returns:
    ``dtype``, ``shape`` (None for unknown rank), ``is_composite``,
    ``is_sparse`` and, for a ragged tensor, ``ragged_rank``.
  """
  shape = info.get_shape()
  record = {"dtype": info.dtype.name,
            "is_composite": bool(info.is_composite),
            "is_sparse": bool(info.is_sparse),
            "shape": None if shape.rank is None else shape.as_list()}
  ragged_rank = getattr(info.type_spec, "ragged_rank", None)
  if info.is_composite and not info.is_sparse and ragged_rank is not None:
    record["ragged_rank"] = int(ragged_rank)
  return record


def _signatures(spec, tags) -> Dict[str, Any]:
  """Describes every signature of one graph variant.

  Args:
    spec: a ``hub.ModuleSpec``.
    tags: the graph variant.

  Returns:
    ``{signature: {"inputs": {...}, "outputs": {...}}}`` of
    :func:`_info_record` records.
  """
  return {name: {"inputs": {k: _info_record(v) for k, v in
                            spec.get_input_info_dict(name, tags).items()},
                 "outputs": {k: _info_record(v) for k, v in
                             spec.get_output_info_dict(name, tags).items()}}
          for name in spec.get_signature_names(tags)}


def _variables(tf, hub, path: str, tags) -> List[Dict[str, Any]]:
  """Describes the variables as ``hub.Module(trainable=True)`` shows them.

  Args:
    tf: the tensorflow module (TF1 compat mode).
    hub: the tensorflow_hub module.
    path: the module folder.
    tags: the graph variant to instantiate.

  Returns:
    One record per ``variable_map`` name, sorted: ``name``, ``dtype``,
    ``shape``, ``trainable``, ``reference_variable`` (a ``VariableV2`` op)
    and, for a partitioned variable, ``partitions`` and
    ``partition_shapes``.
  """
  graph = tf.Graph()
  with graph.as_default():
    module = hub.Module(path, trainable=True, tags=set(tags))
    trainable = {v.op.name for v in tf.compat.v1.trainable_variables()}
    records = []
    for name, value in sorted(module.variable_map.items()):
      parts = value if isinstance(value, list) else [value]
      record = {"dtype": parts[0].dtype.base_dtype.name, "name": name,
                "reference_variable": parts[0].op.type == "VariableV2",
                "trainable": all(p.op.name in trainable for p in parts)}
      shapes = [p.shape.as_list() for p in parts]
      if isinstance(value, list):
        record["partitions"] = [p.op.name.split("/", 1)[1] for p in parts]
        record["partition_shapes"] = shapes
        record["shape"] = [sum(s[0] for s in shapes)] + shapes[0][1:]
      else:
        record["shape"] = shapes[0]
      records.append(record)
  return records


def _zeros_like_info(tf, info):
  """Makes an input for a dense signature input, as the parity test does.

  Args:
    tf: the tensorflow module.
    info: the input's ``hub.ParsedTensorInfo``.

  Returns:
    A batch of 2 zeros of the input's dtype and shape, or 0.5 for a scalar.
  """
  shape = info.get_shape()
  if shape.rank == 0:
    return tf.constant(0.5, info.dtype)
  return tf.zeros([2] + shape.as_list()[1:], info.dtype)


def _collections(tf, hub, path: str, tag_sets, signature: str
                 ) -> List[Dict[str, Any]]:
  """Counts what a Module adds to UPDATE_OPS and REGULARIZATION_LOSSES.

  Args:
    tf: the tensorflow module (TF1 compat mode).
    hub: the tensorflow_hub module.
    path: the module folder.
    tag_sets: the graph variants.
    signature: the signature applied (once, in a new graph per variant and
      per ``trainable``).

  Returns:
    One record per tag set: ``signature``, ``tags`` and, for
    ``trainable_module`` and ``non_trainable_module``, the numbers of update
    ops and regularization losses and the variables the update ops write.
  """
  records = []
  for tags in tag_sets:
    record = {"signature": signature, "tags": list(tags)}
    for trainable in (False, True):
      graph = tf.Graph()
      with graph.as_default():
        module = hub.Module(path, trainable=trainable, tags=set(tags))
        info = module.get_input_info_dict(signature)
        module({k: _zeros_like_info(tf, v) for k, v in info.items()},
               signature=signature)
        keys = tf.compat.v1.GraphKeys
        update_ops = tf.compat.v1.get_collection(keys.UPDATE_OPS)
        losses = tf.compat.v1.get_collection(keys.REGULARIZATION_LOSSES)
        written = sorted(
            name for op in update_ops
            for name, var in module.variable_map.items()
            if not isinstance(var, list)
            and var.op in [i.op for i in op.inputs])
      record["trainable_module" if trainable else "non_trainable_module"] = {
          "num_regularization_losses": len(losses),
          "num_update_ops": len(update_ops),
          "update_ops_variables": written}
    records.append(record)
  return sorted(records, key=lambda r: r["tags"], reverse=True)


def _attached_messages(tf, hub, path: str) -> List[Dict[str, Any]]:
  """Reads the attached messages of each graph variant.

  Args:
    tf: the tensorflow module.
    hub: the tensorflow_hub module.
    path: the module folder.

  Returns:
    ``[{"tags": [...], "messages": {key: {"message_type",
    "serialized_base64", "text_format"}}}]``, the bytes exactly as stored
    in the ``hub_module_attachments`` collection.

  Raises:
    AssertionError: a stored message differs from what
      ``hub.ModuleSpec.get_attached_message`` returns.
  """
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  from tensorflow_hub import module_attachment_pb2  # pylint: disable=g-import-not-at-top
  message_types = {"image_module_info": hub.ImageModuleInfo,
                   "label_info": tf.train.Example}
  saved_model = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    saved_model.ParseFromString(f.read())
  spec = hub.load_module_spec(path)
  groups = []
  for meta_graph in saved_model.meta_graphs:
    tags = sorted(meta_graph.meta_info_def.tags)
    collection = meta_graph.collection_def.get("hub_module_attachments")
    messages = {}
    for data in (collection.bytes_list.value if collection else []):
      attachment = module_attachment_pb2.ModuleAttachment()
      attachment.ParseFromString(data)
      message = message_types[attachment.key]()
      message.ParseFromString(attachment.value)
      if message != spec.get_attached_message(
          attachment.key, message_types[attachment.key], tags=set(tags)):
        raise AssertionError(f"{path}: attachment {attachment.key} differs "
                             "from hub's get_attached_message")
      messages[attachment.key] = {
          "message_type": message.DESCRIPTOR.full_name,
          "serialized_base64": base64.b64encode(attachment.value).decode(),
          "text_format": text_format.MessageToString(message)}
    if messages:
      groups.append({"messages": messages, "tags": tags})
  return groups


def _tag_sets(spec) -> List[List[str]]:
  """The spec's tag sets as sorted lists, in sorted order."""
  return sorted(sorted(tags) for tags in spec.get_tags())


def record_all(part_dir: str) -> None:
  """Records, with hub.Module, everything the manifest says of each module.

  Writes ``part_dir/.work/module.json`` and ``part_dir/.work/module.npz``
  (arrays keyed ``MODULE/GOLDEN_KEY``).

  Args:
    part_dir: the part folder holding the exported modules.

  Raises:
    AssertionError: tag sets disagree about the signatures, or fine-tuning
      did not lower the loss.
  """
  tf, hub = _graph_mode()
  results, arrays = {}, {}
  for recipe in tf1_modules.recipes():
    path = os.path.join(part_dir, recipe.name)
    spec = hub.load_module_spec(path)
    tag_sets = _tag_sets(spec)
    signatures = [_signatures(spec, set(tags)) for tags in tag_sets]
    if any(s != signatures[0] for s in signatures):
      raise AssertionError(f"{recipe.name}: signatures differ by tag set")
    names = sorted(signatures[0])
    result = {
        "tag_sets": tag_sets,
        "signatures": signatures[0],
        "auto_signature": "default" if "default" in names else (
            names[0] if len(names) == 1 else None),
        "variables": _variables(tf, hub, path, max(tag_sets, key=len)),
        "cases": {},
    }
    for case in recipe.cases:
      if case.api == "hub.load.signatures":
        continue
      outputs, state = run_module_case(
          tf, hub, path, case.tags, case.signature, case.inputs,
          case.composite_inputs, case.state_variables)
      prefix = f"{recipe.name}/{case.case_id}"
      stored = {"outputs": sorted(outputs) if not case.state_variables
                else [], "state_after": sorted(state)}
      if not case.state_variables:
        for key, value in outputs.items():
          arrays[f"{prefix}/out/{key}"] = np.asarray(value)
      for key, value in state.items():
        arrays[f"{prefix}/state/{key}"] = np.asarray(value)
      result["cases"][case.case_id] = stored
    if recipe.collections_signature:
      result["collections"] = _collections(tf, hub, path, tag_sets,
                                           recipe.collections_signature)
    if recipe.finetune:
      step = _finetune_step(tf, hub, path, recipe.finetune)
      if not step["loss_after"] < step["loss_before"]:
        raise AssertionError(f"{recipe.name}: fine-tuning did not lower the "
                             f"loss: {step['loss_before']} -> "
                             f"{step['loss_after']}")
      for when in ("before", "after"):
        for key, value in step.pop(when).items():
          arrays[f"{recipe.name}/finetune/{when}/{key}"] = np.asarray(value)
      result["finetune"] = step
    if recipe.attached_message_keys:
      result["attached_messages"] = _attached_messages(tf, hub, path)
      found = sorted({k for g in result["attached_messages"]
                      for k in g["messages"]})
      if found != sorted(recipe.attached_message_keys):
        raise AssertionError(f"{recipe.name}: attachments {found}")
    if recipe.image_helpers:
      result["image_helpers"] = {
          "hub.get_expected_image_size(spec)": [
              int(d) for d in hub.get_expected_image_size(spec)],
          "hub.get_num_image_channels(spec, signature='image_classification')":
              int(hub.get_num_image_channels(
                  spec, signature="image_classification")),
      }
    results[recipe.name] = result
  work = os.path.join(part_dir, ".work")
  _write_json(os.path.join(work, "module.json"), results)
  np.savez(os.path.join(work, "module.npz"), **arrays)


# --- verify -------------------------------------------------------------------
def _load_part(part_dir: str) -> List[Dict[str, Any]]:
  """The manifest entries of a finished part."""
  with open(os.path.join(part_dir, "manifest.json")) as f:
    manifest = json.load(f)
  return manifest["fixtures"]


def golden_arrays(golden, specs: Mapping[str, Any]) -> Dict[str, np.ndarray]:
  """Reads the arrays a case's ``inputs`` or ``outputs`` record names.

  Args:
    golden: the fixture's loaded ``.npz``.
    specs: ``{name: {"key", "dtype", "shape"}}``.

  Returns:
    The arrays by name.
  """
  return {name: golden[spec["key"]] for name, spec in specs.items()}


def check_outputs(where: str, entry: Mapping[str, Any],
                  case: Mapping[str, Any], actual: Mapping[str, Any],
                  expected: Mapping[str, np.ndarray]) -> None:
  """Raises unless actual outputs match the goldens as the case says.

  Args:
    where: names the case in the error.
    entry: the fixture's manifest entry (for its tolerance).
    case: the case record (for its check).
    actual: the outputs computed now.
    expected: the golden outputs.

  Raises:
    AssertionError: keys, shapes, dtypes or values differ.
  """
  if sorted(actual) != sorted(expected):
    raise AssertionError(f"{where}: outputs {sorted(actual)} != "
                         f"{sorted(expected)}")
  for key, want in expected.items():
    got = np.asarray(actual[key])
    if got.shape != want.shape:
      raise AssertionError(f"{where}/{key}: shape {got.shape} != "
                           f"{want.shape}")
    if want.dtype.kind in "US" or got.dtype == object:
      if case.get("check", "allclose") == "allclose" and (
          tf_value(want).tolist() != got.tolist()):
        raise AssertionError(f"{where}/{key}: strings differ")
      continue
    if got.dtype != want.dtype:
      raise AssertionError(f"{where}/{key}: dtype {got.dtype} != "
                           f"{want.dtype}")
    if case.get("check", "allclose") == "allclose":
      np.testing.assert_allclose(got, want, err_msg=f"{where}/{key}",
                                 **entry["tolerance"])


def verify_all(part_dir: str) -> None:
  """Re-runs, with hub.Module, every TF1 golden of the written part.

  Checks every ``hub.Module`` and ``hub.Module.update_ops`` case and every
  ``finetune`` record against the manifest and goldens on disk.

  Args:
    part_dir: the finished part folder.

  Raises:
    AssertionError: a value does not come out again.
  """
  tf, hub = _graph_mode()
  checked = 0
  for entry in _load_part(part_dir):
    path = os.path.join(part_dir, entry["path"])
    golden = np.load(os.path.join(part_dir, entry["golden"]),
                     allow_pickle=False)
    for case in entry["cases"]:
      if case["api"] not in ("hub.Module", "hub.Module.update_ops"):
        continue
      where = f"{entry['name']}/{case['id']}"
      state_specs = case.get("state_after", {})
      outputs, state = run_module_case(
          tf, hub, path, case["tags"], case["signature"],
          golden_arrays(golden, case["inputs"]),
          case.get("composite_inputs"), tuple(state_specs))
      if case["api"] == "hub.Module":
        check_outputs(where, entry, case, outputs,
                      golden_arrays(golden, case["outputs"]))
      for key, want in golden_arrays(golden, state_specs).items():
        np.testing.assert_allclose(state[key], want, err_msg=f"{where}/{key}",
                                   **entry["tolerance"])
      checked += 1
    record = entry.get("finetune")
    if record:
      recipe = tf1_modules.recipe(entry["name"])
      spec = tf1_modules.FinetuneSpec(
          signature=record["signature"], tags=tuple(record["tags"]),
          input_name=recipe.finetune.input_name,
          input_value=golden[record["input"]["key"]],
          learning_rate=recipe.finetune.learning_rate)
      step = _finetune_step(tf, hub, path, spec)
      tol = record["tolerance"]
      for key in ("loss_before", "loss_after"):
        np.testing.assert_allclose(step[key], record[key],
                                   err_msg=f"{entry['name']} {key}", **tol)
      for when in ("before", "after"):
        want = golden_arrays(golden, record[f"variables_{when}"])
        for key, value in want.items():
          np.testing.assert_allclose(step[when][key], value,
                                     err_msg=f"{entry['name']} {when} {key}",
                                     **tol)
      for key in ("trainable_variables", "num_update_ops",
                  "num_regularization_losses"):
        if step[key] != record[key]:
          raise AssertionError(f"{entry['name']} finetune {key}: "
                               f"{step[key]} != {record[key]}")
      checked += 1
  print(f"verified {checked} hub.Module cases and fine-tuning records")


def _write_json(path: str, data: Any) -> None:
  """Writes ``data`` as JSON, creating the folder."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(data, f, indent=1, sort_keys=True)
