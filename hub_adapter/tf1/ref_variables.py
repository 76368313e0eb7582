"""Rewrites TF1 reference variables of a graph as resource variables.

TF 1.x-era modules keep their state in reference variables (``VariableV2``
nodes whose ``float_ref`` output is read through ``x/read`` Identity nodes and
written by ``Assign``/``AssignSub``/``Scatter*`` ops). TF2 functions cannot
share reference variables; they share resource variables (``VarHandleOp``),
read with ``ReadVariableOp`` and written with ``AssignVariableOp`` and its
kin. :func:`to_resource_variables` rewrites a ``MetaGraphDef`` in place, on
the protos:

- each ``VariableV2``/``Variable`` node becomes a ``VarHandleOp`` of the
  same name, dtype, shape and shared name;
- ops that forward references (``RefIdentity``, ``RefEnter``, ``RefExit``,
  ``RefSwitch``, ``RefMerge``, ``RefNextIteration``) become their plain
  versions forwarding the resource handle (so variables used inside v1
  ``while``/``cond`` frames keep working);
- ops that write through a reference become their resource versions
  (``Assign`` -> ``AssignVariableOp``, ``AssignSub`` ->
  ``AssignSubVariableOp``, ``ScatterUpdate`` -> ``ResourceScatterUpdate``,
  ``IsVariableInitialized`` -> ``VarIsInitializedOp``, ``CountUpTo`` ->
  ``ResourceCountUpTo``, ``Apply*`` -> ``ResourceApply*``); where their
  (reference) output was read, a ``ReadVariableOp`` after the write stands
  in for it;
- ops that read the value (``x/read`` snapshots and any other op with a
  non-reference input) read it with ``ReadVariableOp``: an ``Identity`` or
  ``Snapshot`` is turned into one in place (so ``x/read:0`` keeps its name),
  other readers get a new ``ReadVariableOp`` node in between.

Anything else that takes a reference raises :class:`RefRewriteError` naming
the node and op, for the caller's message.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Set, Tuple

from hub_adapter.tf1 import hub_protos

REF_VARIABLE_OPS = ("VariableV2", "Variable")

# Ref-forwarding ops -> plain ops that forward a resource handle.
_FORWARDING = {
    "RefIdentity": "Identity", "RefEnter": "Enter", "RefExit": "Exit",
    "RefSwitch": "Switch", "RefMerge": "Merge",
    "RefNextIteration": "NextIteration",
}

# Ops writing through a reference (their input 0) -> resource versions.
_WRITERS = {
    "Assign": "AssignVariableOp", "AssignAdd": "AssignAddVariableOp",
    "AssignSub": "AssignSubVariableOp",
    "ScatterUpdate": "ResourceScatterUpdate",
    "ScatterAdd": "ResourceScatterAdd", "ScatterSub": "ResourceScatterSub",
    "ScatterMul": "ResourceScatterMul", "ScatterDiv": "ResourceScatterDiv",
    "ScatterMin": "ResourceScatterMin", "ScatterMax": "ResourceScatterMax",
    "ScatterNdUpdate": "ResourceScatterNdUpdate",
    "ScatterNdAdd": "ResourceScatterNdAdd",
    "ScatterNdSub": "ResourceScatterNdSub",
    "IsVariableInitialized": "VarIsInitializedOp",
    "CountUpTo": "ResourceCountUpTo",
}

_READERS_IN_PLACE = ("Identity", "Snapshot")
_READ_SUFFIX = "/hub_adapter_read"


class RefRewriteError(ValueError):
  """A graph uses a reference in a way that has no resource equivalent.

  Attributes:
    node: The node's name.
    op: Its op type.
  """

  def __init__(self, node: str, op: str, why: str):
    super().__init__(f"{op} node {node!r}: {why}")
    self.node = node
    self.op = op
    self.why = why


def _split(tensor: str) -> Tuple[str, int, bool]:
  """``"^a"`` -> ("a", -1, True); ``"a:1"`` -> ("a", 1, False)."""
  if tensor.startswith("^"):
    return tensor[1:], -1, True
  match = re.match(r"^(.*):(\d+)$", tensor)
  if match:
    return match.group(1), int(match.group(2)), False
  return tensor, 0, False


def _resource_op(op_type: str) -> Optional[str]:
  if op_type in _WRITERS:
    return _WRITERS[op_type]
  if op_type.startswith("Apply") or op_type.startswith("SparseApply"):
    return "Resource" + op_type
  return None


def _input_ref_flags(node, op_def) -> List[bool]:
  """Whether each (flat) data input of ``node`` is a reference input."""
  flags: List[bool] = []
  for arg in op_def.input_arg:
    if arg.number_attr:
      count = node.attr[arg.number_attr].i
    elif arg.type_list_attr:
      count = len(node.attr[arg.type_list_attr].list.type)
    else:
      count = 1
    flags.extend([arg.is_ref] * count)
  return flags


def _output_ref_flags(node, op_def) -> List[bool]:
  flags: List[bool] = []
  for arg in op_def.output_arg:
    if arg.number_attr:
      count = node.attr[arg.number_attr].i
    elif arg.type_list_attr:
      count = len(node.attr[arg.type_list_attr].list.type)
    else:
      count = 1
    flags.extend([arg.is_ref] * count)
  return flags


def _fit_attrs(node, new_op: str, dtype_enum: int) -> None:
  """Keeps the attrs ``new_op`` declares; sets ``dtype``/``T`` from the
  variable's dtype where the new op asks for them."""
  from tensorflow.python.framework import op_def_registry  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  op_def = op_def_registry.get(new_op)
  if op_def is None:
    raise RefRewriteError(node.name, node.op,
                          f"its resource version {new_op} is not registered")
  wanted = {a.name for a in op_def.attr}
  old = dict(node.attr)
  node.attr.clear()
  for name, value in old.items():
    if name in wanted:
      node.attr[name].CopyFrom(value)
  if "dtype" in wanted and "dtype" not in node.attr:
    node.attr["dtype"].type = dtype_enum
  node.op = new_op


def to_resource_variables(meta_graph) -> List[str]:
  """Rewrites the reference variables of a ``MetaGraphDef``, in place.

  Args:
    meta_graph: A copy of a module's meta graph (edited in place).

  Returns:
    The names of the variable nodes that were rewritten.

  Raises:
    RefRewriteError: a node takes a reference and has no resource
      equivalent (e.g. a reference passed into a function or a custom op).
  """
  from tensorflow.core.framework import types_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  from tensorflow.python.framework import op_def_registry  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  graph_def = meta_graph.graph_def
  nodes = {node.name: node for node in graph_def.node}
  variables = [n for n in graph_def.node if n.op in REF_VARIABLE_OPS]
  if not variables:
    return []
  # Which tensors carry a (former) reference, and the variable's dtype.
  resource: Dict[Tuple[str, int], int] = {}
  for var in variables:
    resource[(var.name, 0)] = var.attr["dtype"].type
  consumers: Dict[str, List[Tuple[object, int]]] = {}
  for node in graph_def.node:
    for i, inp in enumerate(node.input):
      name, _, control = _split(inp)
      if not control:
        consumers.setdefault(name, []).append((node, i))
  added: List[str] = []
  done: Set[str] = set()
  # Forwarding ops are rewritten before their consumers are looked at.
  queue = [var.name for var in variables]
  while queue:
    producer = queue.pop(0)
    for consumer, slot in list(consumers.get(producer, ())):
      source = _split(consumer.input[slot])
      key = (source[0], source[1])
      if key not in resource:
        continue
      dtype = resource[key]
      op_def = op_def_registry.get(consumer.op)
      if consumer.name in done:
        if consumer.op in _FORWARDING.values() or consumer.op.startswith(
            ("Resource", "Assign", "VarIsInitialized")):
          continue
      if op_def is None:
        raise RefRewriteError(consumer.name, consumer.op,
                              "it is not a registered op")
      data_slot = sum(1 for x in consumer.input[:slot]
                      if not x.startswith("^"))
      flags = _input_ref_flags(consumer, op_def)
      is_ref = data_slot < len(flags) and flags[data_slot]
      if consumer.op in _FORWARDING:
        outputs = _output_ref_flags(consumer, op_def)
        consumer.op = _FORWARDING[consumer.op]
        consumer.attr["T"].type = types_pb2.DT_RESOURCE
        for index, ref in enumerate(outputs):
          if ref:
            resource[(consumer.name, index)] = dtype
        done.add(consumer.name)
        queue.append(consumer.name)
      elif is_ref:
        new_op = _resource_op(consumer.op)
        if new_op is None:
          raise RefRewriteError(
              consumer.name, consumer.op,
              "it takes a reference variable and has no resource-variable "
              "equivalent")
        if data_slot != 0:
          # Ops with several reference inputs (slots of Apply*): all of them
          # are variables too; nothing more to change on this node.
          if consumer.name in done:
            continue
        outputs = _output_ref_flags(consumer, op_def)
        _fit_attrs(consumer, new_op, dtype)
        done.add(consumer.name)
        if any(outputs):
          # The old op returned the updated reference; readers of it now
          # read the variable after the write.
          for reader, reader_slot in list(consumers.get(consumer.name, ())):
            rname, rindex, _ = _split(reader.input[reader_slot])
            if rname != consumer.name:
              continue
            var_tensor = consumer.input[0]
            read_name = consumer.name + _READ_SUFFIX
            if read_name not in nodes:
              read = graph_def.node.add()
              read.name = read_name
              read.op = "ReadVariableOp"
              read.input.append(var_tensor)
              read.input.append("^" + consumer.name)
              read.attr["dtype"].type = dtype
              if consumer.device:
                read.device = consumer.device
              nodes[read_name] = read
              added.append(read_name)
            reader.input[reader_slot] = read_name
      elif consumer.op in _READERS_IN_PLACE and data_slot == 0:
        consumer.op = "ReadVariableOp"
        consumer.attr.clear()
        consumer.attr["dtype"].type = dtype
        done.add(consumer.name)
      else:
        name = (source[0] if source[1] == 0
                else f"{source[0]}_{source[1]}") + _READ_SUFFIX
        if name not in nodes:
          read = graph_def.node.add()
          read.name = name
          read.op = "ReadVariableOp"
          read.input.append(consumer.input[slot])
          read.attr["dtype"].type = dtype
          nodes[name] = read
          added.append(name)
        consumer.input[slot] = name
  for var in variables:
    dtype = var.attr["dtype"].type
    shape = var.attr["shape"]
    container = var.attr["container"].s if "container" in var.attr else b""
    shared = var.attr["shared_name"].s if "shared_name" in var.attr else b""
    var.op = "VarHandleOp"
    var.attr.clear()
    var.attr["dtype"].type = dtype
    var.attr["shape"].CopyFrom(shape)
    var.attr["container"].s = container
    var.attr["shared_name"].s = shared or var.name.encode("utf-8")
  _note_new_nodes(meta_graph, added)
  return [v.name for v in variables]


def _note_new_nodes(meta_graph, added: List[str]) -> None:
  """Adds new read nodes to the v1 control-flow context of their input, so
  contexts restored from the meta graph know them."""
  if not added:
    return
  from tensorflow.core.protobuf import control_flow_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  nodes = {node.name: node for node in meta_graph.graph_def.node}
  for key, proto_type in (
      (hub_protos.WHILE_CONTEXT, control_flow_pb2.WhileContextDef),
      (hub_protos.COND_CONTEXT, control_flow_pb2.CondContextDef)):
    collection = meta_graph.collection_def.get(key)
    if collection is None:
      continue
    values = collection.bytes_list.value
    for i, raw in enumerate(values):
      context = proto_type()
      context.ParseFromString(raw)
      known = set(context.values_def.values)
      changed = False
      for name in added:
        source = nodes[name].input[0]
        source = source if ":" in source else source + ":0"
        if source in known:
          context.values_def.values.append(name + ":0")
          changed = True
      if changed:
        values[i] = context.SerializeToString()
