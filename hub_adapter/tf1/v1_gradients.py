"""Gradients of TF1 graphs with v1 control flow, built ahead of time.

TF 1.x-era modules loop and branch with v1 control flow (``dynamic_rnn``'s
``while_loop`` and ``tf.cond`` as ``Enter``/``Exit``/``Switch``/``Merge``/
``NextIteration`` ops). TensorFlow can run such graphs inside TF2 functions,
but it can only differentiate them while the Python ``WhileContext`` /
``CondContext`` objects exist, which a function loaded from a SavedModel
never has. So a converted module could infer but not fine-tune.

:func:`add_gradient_graphs` therefore builds the backward pass at conversion
time, the way TF1 built it: the meta graph is imported into a plain graph
with its control-flow contexts restored (from the ``while_context`` and
``cond_context`` collections), and ``tf.gradients`` of each signature's
float outputs is taken with respect to its float inputs and to each
variable (its handle, so every read counts, inside loops too), with
placeholders for the incoming gradients. The graph, now
holding forward and backward ops, replaces the meta graph's ``graph_def``;
the converter prunes a forward and a backward function out of it and ties
them together with ``tf.custom_gradient``.

The backward function recomputes the forward pass (as TF1's gradient graph
does with its own stacks), so stateful random ops (dropout) draw their masks
in both functions; with seeded ops they agree as long as every forward call
is differentiated once.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

from hub_adapter.tf1 import graph_surgery

V1_CONTROL_FLOW_OPS = frozenset({
    "Enter", "Exit", "Switch", "Merge", "NextIteration", "LoopCond",
    "RefEnter", "RefExit", "RefSwitch", "RefMerge", "RefNextIteration"})
_FLOAT_KINDS = ("float16", "bfloat16", "float32", "float64")
_SCOPE = "hub_adapter_gradients"


@dataclasses.dataclass(frozen=True)
class Target:
  """Something a signature's outputs are differentiated with respect to.

  Attributes:
    kind: ``"input"`` (a float input of the signature) or ``"variable"``.
    name: The input key, or the variable node's name.
    tensor: The tensor differentiated against (the input tensor, or the
      variable's ``VarHandleOp`` output: its gradient sums every read).
    grad: The gradient tensor's name; for a sparse gradient
      (``IndexedSlices``) the values' name, with ``indices`` and
      ``dense_shape`` below; None when the outputs do not depend on it.
    indices: The sparse gradient's indices tensor, else None.
    dense_shape: The sparse gradient's dense shape tensor, else None.
  """
  kind: str
  name: str
  tensor: str
  grad: Optional[str]
  indices: Optional[str] = None
  dense_shape: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SignatureGradient:
  """The backward pass of one signature.

  Attributes:
    outputs: The float output keys, in the order of ``incoming``.
    incoming: Placeholder tensor names of the gradients of ``outputs``.
    targets: What the gradient is taken against.
  """
  outputs: Tuple[str, ...]
  incoming: Tuple[str, ...]
  targets: Tuple[Target, ...]


class GradientError(ValueError):
  """The backward pass cannot be built (the message says where)."""


def has_v1_control_flow(meta_graph) -> bool:
  """Whether a meta graph's graph uses v1 control-flow ops."""
  return any(node.op in V1_CONTROL_FLOW_OPS
             for node in meta_graph.graph_def.node)


def _is_float(tf, dtype) -> bool:
  return tf.as_dtype(dtype).base_dtype.name in _FLOAT_KINDS


def add_gradient_graphs(meta_graph, variables, signatures=None
                        ) -> Dict[str, SignatureGradient]:
  """Adds the backward pass of each signature to ``meta_graph``, in place.

  Args:
    meta_graph: A prepared copy of a graph variant (its reference variables
      already rewritten as resource variables); its ``graph_def`` is
      replaced by one that also holds the gradient ops.
    variables: The names of the variable nodes (``VarHandleOp``).
    signatures: The signature names to differentiate (default: all).

  Returns:
    Signature name -> :class:`SignatureGradient` (signatures without float
    outputs are left out).

  Raises:
    GradientError: TensorFlow cannot build a gradient (the op and reason
      are in the message).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.framework import meta_graph as meta_graph_lib  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  from tensorflow.python.ops import control_flow_util  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  variables = set(variables)
  importable = graph_surgery.copy_meta_graph(meta_graph)
  keep = set(graph_surgery.CONTROL_FLOW_COLLECTIONS)
  for key in list(importable.collection_def):
    if key not in keep:
      del importable.collection_def[key]
  importable.ClearField("saver_def")
  result: Dict[str, SignatureGradient] = {}
  graph = tf.Graph()
  # TF1's TensorArray and control-flow gradients, as when the module was
  # made; TF2 would build v2 versions that do not fit v1 loops.
  previous = control_flow_util.ENABLE_CONTROL_FLOW_V2
  control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
  try:
    with graph.as_default():
      meta_graph_lib.import_scoped_meta_graph_with_return_elements(
          importable, import_scope="")
      # Gradients are taken with respect to each variable's handle: they
      # gather every read (ReadVariableOp, ResourceGather, reads inside v1
      # loops through Enter), as tf.gradients(loss, variable) does in TF1.
      handles = [(name, graph.get_operation_by_name(name))
                 for name in sorted(variables)]
      names = sorted(signatures if signatures is not None
                     else meta_graph.signature_def)
      for index, name in enumerate(names):
        signature = meta_graph.signature_def[name]
        outputs = [k for k in sorted(signature.outputs)
                   if signature.outputs[k].WhichOneof("encoding") == "name"
                   and _is_float(tf, signature.outputs[k].dtype)]
        if not outputs:
          continue
        targets = []
        for key in sorted(signature.inputs):
          info = signature.inputs[key]
          if info.WhichOneof("encoding") == "name" and _is_float(
              tf, info.dtype):
            targets.append(("input", key,
                            graph.get_tensor_by_name(info.name)))
        output_tensors = [graph.get_tensor_by_name(signature.outputs[k].name)
                          for k in outputs]
        reachable = _ops_between(output_tensors)
        for owner, op in handles:
          if op in reachable:
            targets.append(("variable", owner, op.outputs[0]))
        with tf.name_scope(f"{_SCOPE}/{index}"):
          incoming = [tf.compat.v1.placeholder(t.dtype, t.shape,
                                               name=f"incoming_{i}")
                      for i, t in enumerate(output_tensors)]
          try:
            grads = tf.gradients(output_tensors, [t for _, _, t in targets],
                                 grad_ys=incoming)
          except (LookupError, ValueError, TypeError) as e:
            raise GradientError(
                f"TensorFlow cannot differentiate signature {name!r}: "
                f"{type(e).__name__}: {str(e)[:500]}") from e
          built = []
          for (kind, key, tensor), grad in zip(targets, grads):
            if grad is None:
              built.append(Target(kind, key, tensor.name, None))
            elif isinstance(grad, tf.IndexedSlices):
              shape = (grad.dense_shape if grad.dense_shape is not None
                       else tf.shape(tensor))
              built.append(Target(kind, key, tensor.name, grad.values.name,
                                  grad.indices.name, shape.name))
            else:
              built.append(Target(kind, key, tensor.name, grad.name))
        result[name] = SignatureGradient(
            outputs=tuple(outputs), incoming=tuple(t.name for t in incoming),
            targets=tuple(built))
  finally:
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = previous
  if result:
    graph_def = graph.as_graph_def()
    meta_graph.graph_def.CopyFrom(graph_def)
  return result


def _ops_between(outputs) -> set:
  """The ops the ``outputs`` depend on (data and control inputs)."""
  seen = set()
  stack = [t.op for t in outputs]
  while stack:
    op = stack.pop()
    if op in seen:
      continue
    seen.add(op)
    stack.extend(t.op for t in op.inputs)
    stack.extend(op.control_inputs)
  return seen


__all__ = ["has_v1_control_flow", "add_gradient_graphs", "SignatureGradient",
           "Target", "GradientError", "V1_CONTROL_FLOW_OPS"]
