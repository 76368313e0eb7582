"""Edits of a module's ``MetaGraphDef`` before it is imported into a graph.

A TF1 Hub module is imported into the caller's graph twice over: once for
its state (variables, tables) and once per signature call. Each import works
on a private copy of the stored meta graph, edited here:

- asset constants get the path of the file to read;
- ``shared_name`` attributes get the instance's scope, so two Module objects
  never share a variable or table in a Session;
- state ops (variables, tables: stateful ops without inputs) become
  placeholders in a call's copy, since the call is wired to the instance's
  state instead;
- nodes no call needs are pruned away, so a call imports only the
  signature's subgraph.

Everything here works on protos; only :func:`state_op_types` asks
TensorFlow's op registry which ops hold state.
"""
from __future__ import annotations

import collections
import re
from typing import Dict, Iterable, List, Mapping, Set

from hub_adapter import errors
from hub_adapter.signatures import node_name
from hub_adapter.tf1 import hub_protos

# v1 control-flow contexts name graph nodes; pruning could remove some of
# them, so graphs that have them are imported whole.
CONTROL_FLOW_COLLECTIONS = (hub_protos.COND_CONTEXT, hub_protos.WHILE_CONTEXT)


def copy_meta_graph(meta_graph):
  """Returns a deep copy of a ``MetaGraphDef``."""
  copy = type(meta_graph)()
  copy.CopyFrom(meta_graph)
  return copy


def set_asset_paths(meta_graph, node_paths: Mapping[str, str],
                    source: str = "module") -> None:
  """Points asset constants to files, in place.

  Args:
    meta_graph: The copy to edit.
    node_paths: Node name -> path of the file.
    source: What to name in errors.

  Raises:
    ModelFormatError: a named node is missing or is not a scalar string
      constant.
  """
  if not node_paths:
    return
  found = set()
  for node in meta_graph.graph_def.node:
    path = node_paths.get(node.name)
    if path is None:
      continue
    tensor = node.attr["value"].tensor
    if node.op != "Const" or len(tensor.string_val) != 1:
      raise errors.ModelFormatError(errors.compose(
          f"The asset node {node.name!r} of {source} is not a scalar string "
          f"constant (op {node.op!r}).",
          "The TF1 Hub format stores asset file names in string Const nodes.",
          "Re-export the module."))
    tensor.string_val[0] = path.encode("utf-8")
    found.add(node.name)
  missing = sorted(set(node_paths) - found)
  if missing:
    raise errors.ModelFormatError(errors.compose(
        f"The asset nodes {errors.choices(missing)} of {source} are missing "
        "from its graph.",
        "saved_model_assets names nodes that the graph does not have.",
        "Re-export the module."))


def prefix_shared_names(meta_graph, scope: str) -> None:
  """Prefixes every non-empty ``shared_name`` attribute with ``scope/``."""
  prefix = scope.rstrip("/") + "/"
  for node in meta_graph.graph_def.node:
    attr = node.attr.get("shared_name")
    if attr is not None and attr.HasField("s") and attr.s:
      attr.s = prefix.encode("utf-8") + attr.s


def _all_nodes(graph_def) -> Iterable:
  yield from graph_def.node
  for function in graph_def.library.function:
    yield from function.node_def


def missing_ops(meta_graph) -> List[str]:
  """Returns the op types of a graph that this TensorFlow does not know."""
  from tensorflow.python.framework import op_def_registry  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  functions = {f.signature.name for f in meta_graph.graph_def.library.function}
  types = {node.op for node in _all_nodes(meta_graph.graph_def)}
  return sorted(t for t in types
                if t not in functions and op_def_registry.get(t) is None)


def state_op_types(graph_def) -> Set[str]:
  """Returns the op types used in ``graph_def`` that hold state.

  Those are the registered stateful ops without inputs: variables
  (``VarHandleOp``, ``VariableV2``), tables, and the like.
  """
  from tensorflow.python.framework import op_def_registry  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  result = set()
  for op_type in {node.op for node in graph_def.node}:
    op_def = op_def_registry.get(op_type)
    if op_def is not None and op_def.is_stateful and not op_def.input_arg:
      result.add(op_type)
  return result


def state_node_names(graph_def) -> List[str]:
  """Returns the names of the nodes that hold the module's state."""
  types = state_op_types(graph_def)
  return [node.name for node in graph_def.node if node.op in types]


def collection_node_names(meta_graph, keys: Iterable[str]) -> Set[str]:
  """Returns the node names listed in node_list collections ``keys``."""
  names = set()
  for key in keys:
    collection = meta_graph.collection_def.get(key)
    if collection is not None and collection.WhichOneof("kind") == "node_list":
      names.update(node_name(v) for v in collection.node_list.value)
  return names


def variable_node_names(meta_graph, keys: Iterable[str]) -> Set[str]:
  """Returns the nodes a ``VariableDef`` collection refers to."""
  from tensorflow.core.framework import variable_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  names = set()
  for key in keys:
    collection = meta_graph.collection_def.get(key)
    if collection is None or collection.WhichOneof("kind") != "bytes_list":
      continue
    for data in collection.bytes_list.value:
      var = variable_pb2.VariableDef()
      var.ParseFromString(data)
      for tensor in (var.variable_name, var.initializer_name,
                     var.snapshot_name, var.initial_value_name):
        if tensor:
          names.add(node_name(tensor))
  return names


def has_control_flow_contexts(meta_graph) -> bool:
  return any(k in meta_graph.collection_def for k in CONTROL_FLOW_COLLECTIONS)


def prune(meta_graph, roots: Iterable[str]) -> None:
  """Keeps only ``roots`` and the nodes they depend on, in place.

  Dependencies follow data and control inputs and colocation constraints
  (``loc:@`` entries of ``_class``). Graphs with v1 control-flow
  contexts are left whole (their contexts refer to nodes by name). Node
  order is preserved; the function library is kept.

  Args:
    meta_graph: The copy to edit.
    roots: Node names to keep.
  """
  if has_control_flow_contexts(meta_graph):
    return
  nodes = {node.name: node for node in meta_graph.graph_def.node}
  keep = set()
  queue = collections.deque(r for r in roots if r in nodes)
  while queue:
    name = queue.popleft()
    if name in keep:
      continue
    keep.add(name)
    node = nodes[name]
    deps = [node_name(inp) for inp in node.input]
    if "_class" in node.attr:
      deps += [v[len(b"loc:@"):].decode("utf-8")
               for v in node.attr["_class"].list.s if v.startswith(b"loc:@")]
    for dep in deps:
      if dep in nodes and dep not in keep:
        queue.append(dep)
  kept = [node for node in meta_graph.graph_def.node if node.name in keep]
  del meta_graph.graph_def.node[:]
  meta_graph.graph_def.node.extend(kept)


def replace_with_placeholders(meta_graph, names: Iterable[str]) -> None:
  """Turns the named (state) nodes into inert placeholders, in place.

  A call's copy keeps these nodes only so that the importer can rewire
  their outputs to the instance's state; nothing consumes the placeholders.
  """
  from tensorflow.core.framework import types_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  names = set(names)
  for node in meta_graph.graph_def.node:
    if node.name in names:
      node.op = "Placeholder"
      node.ClearField("input")
      node.attr.clear()
      node.attr["dtype"].type = types_pb2.DT_RESOURCE


def consumers_by_control(meta_graph, names: Iterable[str]) -> Set[str]:
  """Returns which of ``names`` are used as control inputs in the graph."""
  names = set(names)
  used = set()
  for node in meta_graph.graph_def.node:
    for inp in node.input:
      if inp.startswith("^") and inp[1:] in names:
        used.add(inp[1:])
  return used


def node_output_counts(meta_graph) -> Dict[str, int]:
  """Returns, per node, the highest output index referenced + 1 (min. 1)."""
  counts = collections.defaultdict(lambda: 1)
  for node in meta_graph.graph_def.node:
    for inp in node.input:
      if inp.startswith("^"):
        continue
      match = re.match(r"^(.*):(\d+)$", inp)
      if match:
        counts[match.group(1)] = max(counts[match.group(1)],
                                     int(match.group(2)) + 1)
  return counts
