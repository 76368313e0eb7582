"""Applying a signature: importing its subgraph with the inputs mapped.

Every call of a Module imports, under a fresh name scope such as
``module_apply_default``, the part of the graph variant that computes the
signature's outputs. The importer maps the signature's input placeholders to
the caller's tensors and every state op (variable, table) to the instance's
state, so the call computes with the instance's variables. A trainable
Module's call also imports the variant's UPDATE_OPS (batch-norm moving
averages, ...) into the caller's collection.

This module also converts what callers pass (a bare value or a dict) into
tensors that fit the signature, and the outputs into what ``__call__``
returns.
"""
from __future__ import annotations

import collections
from typing import Any, Dict, Mapping, Optional

from hub_adapter import errors
from hub_adapter import runtime
from hub_adapter.tf1 import graph_surgery
from hub_adapter.tf1 import state as state_lib
from hub_adapter.tf1.spec import NativeModuleSpec, TensorInfo, format_tags


def apply_collections(trainable: bool):
  """Collections a call adds to the caller's graph."""
  keys = [state_lib.ASSET_FILEPATHS, state_lib.COND_CONTEXT,
          state_lib.WHILE_CONTEXT]
  if trainable:
    keys.append(state_lib.UPDATE_OPS)
  return keys


# Inputs ---------------------------------------------------------------------
def _shape_text(shape) -> str:
  if shape.rank is None:
    return "of unknown rank"
  return "[" + ", ".join("None" if d is None else str(d)
                         for d in shape.as_list()) + "]"


def _describe_value(value) -> str:
  tf = runtime.tf()
  for kind in (tf.SparseTensor, tf.RaggedTensor, tf.Tensor):
    if isinstance(value, kind):
      return (f"{kind.__name__} {value.dtype.name} shape "
              f"{_shape_text(value.shape)}")
  return f"{type(value).__name__} {value!r:.80}"


def _describe_spec(info: TensorInfo) -> str:
  kind = "SparseTensor" if info.is_sparse else (
      "Tensor" if not info.is_composite else info.type_spec.value_type.__name__)
  return f"{kind} {info.dtype.name} shape {_shape_text(info.get_shape())}"


def input_dict(inputs, infos: Mapping[str, TensorInfo], signature: str
               ) -> Dict[str, Any]:
  """Puts call inputs into a dict keyed by the signature's input names.

  A bare value is accepted when the signature has exactly one input; None
  means no inputs.

  Raises:
    InputTypeError: the structure or the names do not fit (an InputError
      and a TypeError, as tensorflow_hub raised TypeError).
  """
  expected = sorted(infos)
  if inputs is None:
    given = {}
  elif isinstance(inputs, Mapping):
    given = dict(inputs)
  elif len(infos) == 1:
    given = {expected[0]: inputs}
  elif not infos:
    raise errors.InputTypeError(errors.compose(
        f"Signature {signature!r} takes no inputs; received "
        f"{_describe_value(inputs)}.", fix="Call it without inputs."),
        expected=[], received=type(inputs).__name__)
  else:
    raise errors.InputTypeError(errors.compose(
        f"Signature {signature!r} takes several inputs "
        f"({errors.choices(expected)}); received one "
        f"{_describe_value(inputs)}.",
        fix="Pass a dict with one entry per input name."),
        expected=expected, received=type(inputs).__name__)
  missing = sorted(set(infos) - set(given))
  extra = sorted(set(given) - set(infos))
  if missing or extra:
    raise errors.InputTypeError(errors.compose(
        f"The inputs given to signature {signature!r} do not match its "
        f"input names: missing {errors.choices(missing)}, extra "
        f"{errors.choices(extra)}.",
        f"It expects exactly {errors.choices(expected)}.",
        "Pass a dict with exactly those keys.",
        {"received": errors.choices(given)}),
        expected=expected, received=sorted(given), missing=missing,
        extra=extra)
  return given


def convert_input(value, info: TensorInfo, name: str, signature: str):
  """Converts one input value to a tensor that fits ``info``.

  Raises:
    InputTypeError: the value cannot be converted to the expected dtype, or
      its type or shape is incompatible.
  """
  tf = runtime.tf()
  if isinstance(value, (tf.SparseTensor, tf.RaggedTensor)):
    tensor = value
  else:
    try:
      if isinstance(value, tf.compat.v1.SparseTensorValue):
        # Plain values become tensors of the expected dtype, as dense ones do.
        tensor = tf.SparseTensor(
            tf.convert_to_tensor(value.indices, tf.int64),
            tf.convert_to_tensor(value.values, dtype=info.dtype),
            tf.convert_to_tensor(value.dense_shape, tf.int64))
      else:
        tensor = tf.convert_to_tensor(value, dtype=info.dtype)
    except (TypeError, ValueError) as e:
      raise errors.InputTypeError(errors.compose(
          f"Input {name!r} of signature {signature!r} expects "
          f"{_describe_spec(info)}; received {_describe_value(value)}.",
          f"It cannot be converted to {info.dtype.name}: {e}",
          f"Pass {info.dtype.name} values (e.g. tf.cast(x, "
          f"tf.{info.dtype.name})).",
          {"expected": _describe_spec(info),
           "received": _describe_value(value)}),
          input=name, expected=_describe_spec(info),
          received=_describe_value(value)) from e
  given_spec = tf.type_spec_from_value(tensor)
  if not info.type_spec.is_compatible_with(given_spec):
    raise errors.InputTypeError(errors.compose(
        f"Input {name!r} of signature {signature!r} expects "
        f"{_describe_spec(info)}; received {_describe_value(tensor)}.",
        "Its dtype, shape or tensor type is incompatible.",
        "Pass a value of the expected dtype and shape (None dimensions "
        "accept any size).",
        {"expected": _describe_spec(info),
         "received": _describe_value(tensor)}),
        input=name, expected=_describe_spec(info),
        received=_describe_value(tensor))
  return tensor


def convert_inputs(inputs, infos: Mapping[str, TensorInfo], signature: str
                   ) -> Dict[str, Any]:
  """:func:`input_dict` then :func:`convert_input` for every entry."""
  given = input_dict(inputs, infos, signature)
  return {key: convert_input(given[key], infos[key], key, signature)
          for key in sorted(given)}


def select_outputs(outputs: Dict[str, Any], as_dict: Optional[bool],
                   signature: str):
  """Returns the dict (``as_dict``) or the ``default`` output.

  Raises:
    OutputSelectionError: no ``default`` output and ``as_dict`` is false (a
      SignatureError and TypeError, as tensorflow_hub raised TypeError).
  """
  if as_dict:
    return outputs
  if "default" in outputs:
    return outputs["default"]
  raise errors.OutputSelectionError(errors.compose(
      f"Signature {signature!r} has no output named 'default'; its outputs "
      f"are {errors.choices(outputs)}.",
      "Without as_dict=True a call returns the 'default' output.",
      "Call with as_dict=True and pick the output you need."),
      signature=signature, available=sorted(outputs))


# Import ---------------------------------------------------------------------
def _tensor_names(tensor_info_proto):
  """The graph tensor names one TensorInfo proto refers to, in flat order."""
  encoding = tensor_info_proto.WhichOneof("encoding")
  if encoding == "name":
    return [tensor_info_proto.name]
  if encoding == "coo_sparse":
    sparse = tensor_info_proto.coo_sparse
    return [sparse.indices_tensor_name, sparse.values_tensor_name,
            sparse.dense_shape_tensor_name]
  if encoding == "composite_tensor":
    return [c.name for c in tensor_info_proto.composite_tensor.components]
  raise errors.ModelFormatError(errors.compose(
      f"A signature tensor uses the unknown encoding {encoding!r}.",
      fix="Re-export the module."))


def _flatten(value):
  tf = runtime.tf()
  if isinstance(value, tf.SparseTensor):
    return [value.indices, value.values, value.dense_shape]
  return tf.nest.flatten(value, expand_composites=True)


def _pack(info: TensorInfo, tensors):
  tf = runtime.tf()
  if info.is_sparse:
    return tf.SparseTensor(*tensors)
  if not info.is_composite:
    return tensors[0]
  return tf.nest.pack_sequence_as(info.type_spec, tensors,
                                  expand_composites=True)


def _fix_colocation(graph, scope: str, input_map: Mapping[str, Any]) -> None:
  """Rewrites ``loc:@`` constraints on mapped nodes to their replacements.

  Imported nodes that were colocated with a state op or an input placeholder
  of the module would otherwise be colocated with the call's inert
  placeholder; they follow the tensor that replaced it instead.
  """
  tf = runtime.tf()
  rewrite = collections.defaultdict(set)
  for key, tensor in input_map.items():
    if key.startswith("^"):
      continue
    src = graph_surgery.node_name(key)
    op = tensor if isinstance(tensor, tf.Operation) else tensor.op
    rewrite[f"loc:@{scope}/{src}".encode()].update(op.colocation_groups())
  if not rewrite:
    return
  for op in graph.get_operations():
    if not op.name.startswith(scope + "/"):
      continue
    try:
      groups = op.get_attr("_class")
    except ValueError:
      continue
    new_groups, others, changed = set(), [], False
    for value in groups:
      if value in rewrite:
        new_groups.update(rewrite[value])
        changed = True
      elif value.startswith(b"loc:@"):
        new_groups.add(value)
      else:
        others.append(value)
    if not changed:
      continue
    attr = tf.compat.v1.AttrValue()
    attr.list.s.extend(others + sorted(new_groups))
    op._set_attr("_class", attr)  # pylint: disable=protected-access
    device = ""
    for group in sorted(new_groups):
      target = graph.get_operation_by_name(group[len(b"loc:@"):].decode())
      if target.device:
        device = target.device
        break
    op._set_device(device)  # pylint: disable=protected-access


def import_signature(spec: NativeModuleSpec, tags, state: state_lib.ModuleState,
                     signature: str, inputs: Mapping[str, Any],
                     trainable: bool, name: str) -> Dict[str, Any]:
  """Imports a signature's subgraph wired to ``inputs`` and ``state``.

  Args:
    spec: The module spec.
    tags: The graph variant.
    state: The instance's state.
    signature: The signature name (exists in the variant).
    inputs: Input name -> converted tensor (see :func:`convert_inputs`).
    trainable: Whether UPDATE_OPS join the caller's collection.
    name: The name scope for the call (uniquified in the current scope).

  Returns:
    Output name -> tensor (or composite tensor).
  """
  tf = runtime.tf()
  from tensorflow.python.framework import meta_graph as meta_graph_lib  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  graph = tf.compat.v1.get_default_graph()
  scope = graph.unique_name(name, mark_as_used=False)
  signature_def = spec.get_signature_def(signature, tags)
  meta_graph = state_lib.prepare_meta_graph(spec, tags, scope)

  input_map = {}
  input_nodes = set()
  for key, value in inputs.items():
    names = _tensor_names(signature_def.inputs[key])
    for tensor_name, tensor in zip(names, _flatten(value)):
      input_map[tensor_name] = tensor
      input_nodes.add(graph_surgery.node_name(tensor_name))

  roots = set(input_nodes)
  for info in signature_def.outputs.values():
    roots.update(graph_surgery.node_name(n) for n in _tensor_names(info))
  keys = apply_collections(trainable)
  roots |= graph_surgery.collection_node_names(meta_graph, keys)
  graph_surgery.prune(meta_graph, roots)

  present = {node.name for node in meta_graph.graph_def.node}
  needed = set(graph_surgery.state_node_names(meta_graph.graph_def))
  lacking = sorted(needed - set(state.state_ops) - input_nodes)
  if lacking:
    raise errors.ModelFormatError(errors.compose(
        f"Signature {signature!r} of the graph variant {format_tags(tags)} "
        f"needs state the instance {state.scope!r} does not have: "
        f"{errors.choices(lacking)}.",
        "The instance's variables and tables were created from another "
        "graph variant, which lacks these nodes.",
        "Create the Module with this variant's tags instead.",
        {"folder": spec.module_dir}), missing=lacking)
  state_nodes = [n for n in state.state_ops
                 if n in present and n not in input_nodes]
  graph_surgery.replace_with_placeholders(meta_graph, state_nodes)
  for tensor_name, tensor in state.state_tensors.items():
    if graph_surgery.node_name(tensor_name) in state_nodes:
      input_map[tensor_name] = tensor
  for node in graph_surgery.consumers_by_control(meta_graph, state_nodes):
    input_map["^" + node] = state.state_ops[node].outputs[0]

  # Inside a v1 while loop or cond, values from outside must enter the
  # context to be usable by the imported ops.
  context = graph._get_control_flow_context()  # pylint: disable=protected-access
  if context is not None:
    input_map = {k: context.AddValue(v) for k, v in sorted(input_map.items())}

  wanted = set(keys)
  relative = scope.split("/")[-1]
  meta_graph_lib.import_scoped_meta_graph(
      meta_graph, clear_devices=True, import_scope=relative,
      input_map=input_map,
      restore_collections_predicate=lambda key: key in wanted)
  _fix_colocation(graph, scope, input_map)

  def lookup(tensor_name):
    if tensor_name in input_map:
      return input_map[tensor_name]
    return graph.get_tensor_by_name(f"{scope}/{tensor_name}")

  outputs = {}
  infos = spec.get_output_info_dict(signature, tags)
  for key, info_proto in signature_def.outputs.items():
    tensors = [lookup(n) for n in _tensor_names(info_proto)]
    outputs[key] = _pack(infos[key], tensors)
  return outputs


def check_variant(spec: NativeModuleSpec, tags) -> None:
  """Raises TagSetError unless the spec has the graph variant ``tags``."""
  spec.get_meta_graph(tags)


__all__ = ["convert_inputs", "select_outputs", "import_signature",
           "input_dict", "convert_input", "apply_collections", "format_tags",
           "check_variant"]
