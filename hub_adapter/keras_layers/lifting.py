"""A SavedModel's function with its variables lifted to explicit inputs.

JAX calls TensorFlow through ``jax.experimental.jax2tf.call_tf``, which
reads the variables a TF function captures as constants: their values are
frozen into the JAX computation, so they can neither be trained nor
updated. :func:`lift` rewrites a traced ``tf.ConcreteFunction`` into a pure
function of (variable values, inputs) that returns (outputs, new values of
the variables the call writes), with no variable left inside:

1. Flatten: every function call in the graph (``PartitionedCall``,
   ``StatefulPartitionedCall``, a function used as an op) is inlined, as
   TensorFlow's own inliner does (arguments become ``Identity`` nodes, the
   call node an ``IdentityN`` of the results that waits for the callee's
   side effects), so variable handles no longer cross function
   boundaries.
2. Lift state: each captured variable handle becomes a placeholder of the
   variable's value. Ops on handles are rewritten in dependency order:
   ``ReadVariableOp`` reads the latest value written before it (following
   data and control edges, as TensorFlow orders ops on one resource),
   ``Assign{,Add,Sub}VariableOp`` make a new value, ``ResourceGather{,Nd}``
   become ``GatherV2``/``GatherNd`` on the value. The last value written to
   a variable is an extra output.
3. Seed randomness: stateful random ops (``RandomUniform``, ...) become
   their stateless counterparts fed by a seed input, so that a call and its
   recomputation (``call_tf`` recomputes the forward pass for gradients)
   draw the same numbers, and Keras' seed generator decides them.
4. Prune what the outputs do not need, and list what XLA cannot compile
   (string tensors, lookup tables and other non-variable resources, ops of
   custom-op libraries such as ``tensorflow_text``).

The result, :class:`Lifted`, re-imports the rewritten graph inside any
``tf.function`` trace (:meth:`Lifted.apply`).

This module imports TensorFlow (not Keras or JAX).
"""
from __future__ import annotations

import dataclasses
import heapq
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2
from tensorflow.core.framework import function_pb2
from tensorflow.core.framework import graph_pb2
from tensorflow.core.framework import node_def_pb2
from tensorflow.core.framework import types_pb2
from tensorflow.python.eager import context as eager_context
from tensorflow.python.framework import op_def_registry

from hub_adapter import errors

_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
_READ_OPS = ("ReadVariableOp",)
_WRITE_OPS = {"AssignVariableOp": None, "AssignAddVariableOp": "AddV2",
              "AssignSubVariableOp": "Sub"}
_GATHER_OPS = {"ResourceGather": "GatherV2", "ResourceGatherNd": "GatherNd"}
# Stateful random op -> (stateless op, its input order as indices into the
# stateful op's inputs with "seed" inserted).
_RANDOM_OPS = {
    "RandomUniform": ("StatelessRandomUniform", ("shape", "seed")),
    "RandomStandardNormal": ("StatelessRandomNormal", ("shape", "seed")),
    "TruncatedNormal": ("StatelessTruncatedNormal", ("shape", "seed")),
    "RandomUniformInt": ("StatelessRandomUniformInt",
                         ("shape", "seed", "minval", "maxval")),
}
_INPUT = "hub_input_{}"
_VALUE = "hub_value_{}"
_CAPTURE = "hub_capture_{}"
_SEED = "hub_seed"
_BODY = "body"


class LiftError(errors.HubAdapterError, NotImplementedError):
  """The function uses its variables in a way that cannot be lifted."""


@dataclasses.dataclass(frozen=True)
class JitBlocker:
  """Something in a lifted graph that XLA (so ``jax.jit``) cannot compile.

  Attributes:
    op: The op type.
    node: The node name (inside the flattened graph).
    why: What about it XLA cannot compile.
  """
  op: str
  node: str
  why: str


@dataclasses.dataclass
class Lifted:
  """A TF function of (values, seed, inputs) -> (outputs, new state).

  Attributes:
    graph_def: The rewritten, flattened, pruned graph.
    function: ``graph_def`` as a ``tf.ConcreteFunction`` (pruned out of a
      ``tf.compat.v1.wrap_function``) taking the flat inputs, then the
      values, then the seed (if ``has_seed``), then the captures; returning
      the flat outputs, then the new states.
    input_names: Placeholder names of the function's flat tensor inputs.
    input_specs: Their ``tf.TensorSpec`` s (the dtypes the model expects).
    variable_indices: For each value placeholder (``hub_value_<k>``), the
      index of its variable in the ``variables`` given to :func:`lift`.
    variable_specs: The value placeholders' specs.
    has_seed: Whether the graph draws random numbers from the seed input
      (an int32 tensor of shape [2]).
    captures: Non-variable tensors the function captured (fed as they are).
    output_refs: Graph tensor names of the flat outputs.
    output_structure: The function's structured outputs (for ``tf.nest``).
    state_refs: Graph tensor names of the new values of written variables.
    state_indices: For each state output, the index of its variable.
    jit_blockers: What XLA cannot compile (empty if everything can).
  """
  graph_def: graph_pb2.GraphDef
  function: Any
  input_names: List[str]
  input_specs: List[tf.TensorSpec]
  variable_indices: List[int]
  variable_specs: List[tf.TensorSpec]
  has_seed: bool
  captures: List[Any]
  output_refs: List[str]
  output_structure: Any
  state_refs: List[str]
  state_indices: List[int]
  jit_blockers: List[JitBlocker]

  def apply(self, values: Sequence[Any], seed: Any,
            inputs: Sequence[Any]) -> Tuple[Any, List[Any]]:
    """Calls the function (inside a ``tf.function`` or eagerly).

    Args:
      values: One tensor per entry of ``variable_indices`` (cast to the
        variable's dtype when it differs, e.g. JAX's 32-bit integers).
      seed: An integer tensor of shape [2], used when ``has_seed``.
      inputs: The flat inputs (cast to ``input_specs`` dtypes).

    Returns:
      (the outputs, nested like ``output_structure``; the new values of the
      variables listed by ``state_indices``).
    """
    args = [_cast(x, spec.dtype) for spec, x in zip(self.input_specs, inputs)]
    args += [_static_gradient(_cast(v, spec.dtype), spec.shape)
             for spec, v in zip(self.variable_specs, values)]
    if self.has_seed:
      args.append(_cast(seed, tf.int32))
    args += list(self.captures)
    results = self.function(*args)
    outputs = results[:len(self.output_refs)]
    states = results[len(self.output_refs):]
    return (tf.nest.pack_sequence_as(self.output_structure, outputs,
                                     expand_composites=True), list(states))


def _static_gradient(value: Any, shape: tf.TensorShape) -> Any:
  """``value``, with its gradient made dense and of static ``shape``.

  The gradient of a gather from a value (an embedding lookup) is an
  ``IndexedSlices`` whose dense shape TensorFlow computes at run time; JAX
  (``call_tf``'s gradient) needs it static.
  """
  if not value.dtype.is_floating or not shape.is_fully_defined():
    return value

  @tf.custom_gradient
  def identity(x):
    def gradient(dy):
      return tf.reshape(tf.convert_to_tensor(dy), shape)
    return tf.identity(x), gradient

  return identity(value)


def _cast(value: Any, dtype: tf.DType) -> Any:
  value = tf.convert_to_tensor(value)
  return value if value.dtype == dtype else tf.cast(value, dtype)


def lift(function: Any, variables: Sequence[Any], *,
         what: str = "the model") -> Lifted:
  """Rewrites a concrete function so its variables are explicit inputs.

  Args:
    function: A ``tf.ConcreteFunction`` (e.g. a ``tf.function`` around a
      loaded SavedModel's ``__call__``, traced on input specs).
    variables: The ``tf.Variable`` s whose captured handles become inputs
      (the layer's weights); other captured tensors stay captured.
    what: How to name the function in error messages.

  Returns:
    The :class:`Lifted` function.

  Raises:
    LiftError: a variable is used by an op that cannot be rewritten (e.g.
      passed into ``tf.cond``/``tf.while_loop`` or scattered into), or the
      function returns a variable handle.
  """
  library = _Library(function)
  by_handle = {id(v.handle): i for i, v in enumerate(variables)}
  others = {id(v.handle): v for v in function.variables
            if id(v.handle) not in by_handle}
  graph_inputs = list(function.graph.inputs)
  captured = list(function.captured_inputs)
  n_args = len(graph_inputs) - len(captured)
  fdef = function.function_def
  if len(fdef.signature.input_arg) != len(graph_inputs):
    raise LiftError(errors.compose(
        f"Cannot lift the variables of {what}: its function has "
        f"{len(fdef.signature.input_arg)} arguments for "
        f"{len(graph_inputs)} graph inputs.",
        "TensorFlow traced the function in an unexpected form.",
        "Report this with the model's handle."))

  graph = _Graph()
  arg_refs, input_names, input_specs = [], [], []
  value_of_placeholder: Dict[str, int] = {}
  variable_indices: List[int] = []
  capture_tensors: List[Any] = []
  for k, tensor in enumerate(graph_inputs):
    if k < n_args:
      name = _INPUT.format(len(input_names))
      input_names.append(name)
      input_specs.append(tf.TensorSpec(tensor.shape, tensor.dtype))
      graph.add(_placeholder(name, tensor.dtype, tensor.shape))
    else:
      external = captured[k - n_args]
      index = by_handle.get(id(external)) if external.dtype == tf.resource \
          else None
      if id(external) in others:
        raise LiftError(errors.compose(
            f"Cannot lift the variables of {what}: it reads variable "
            f"{others[id(external)].name!r}, which is not among the "
            "model's variables.",
            "Only the variables the model lists (its `variables` "
            "attribute) become the layer's weights.",
            "Re-export the model with every variable it uses tracked in "
            "`variables`."))
      if index is not None:
        name = _VALUE.format(len(variable_indices))
        value_of_placeholder[name] = len(variable_indices)
        variable_indices.append(index)
        graph.add(_placeholder(name, tf.resource, tf.TensorShape([])))
      else:
        name = _CAPTURE.format(len(capture_tensors))
        capture_tensors.append(external)
        graph.add(_placeholder(name, external.dtype, tensor.shape))
    arg_refs.append(f"{name}:0")

  outputs, control_outputs = graph.inline(fdef, _BODY, arg_refs, [], library)
  variable_specs = [tf.TensorSpec(variables[i].shape, variables[i].dtype)
                    for i in variable_indices]
  rewrite = _StateRewrite(graph, value_of_placeholder, variable_specs, what)
  rewrite.run()
  for ref in outputs:
    if rewrite.handle_var(ref) is not None:
      raise LiftError(errors.compose(
          f"Cannot lift the variables of {what}: it returns a variable "
          "handle.",
          "A JAX array can hold a value, not a TensorFlow resource.",
          "Return the variable's value (tf.identity(v) or v.read_value())."))
  state_items = sorted(rewrite.final_writes().items())
  state_refs = [ref for _, ref in state_items]
  state_indices = [variable_indices[k] for k, _ in state_items]
  del control_outputs  # Their effects are now outputs (state) or pruned.

  keep = graph.reachable(outputs + state_refs)
  for k in range(len(variable_specs)):
    keep.add(_VALUE.format(k))
  for name in input_names:
    keep.add(name)
  nodes = [n for n in graph.nodes if n.name in keep]
  graph_def = graph_pb2.GraphDef()
  graph_def.node.extend(nodes)
  library.copy_used(nodes, graph_def.library)
  blockers = _jit_blockers(graph_def, capture_tensors)
  feeds = input_names + [_VALUE.format(k) for k in range(len(variable_specs))]
  if rewrite.has_seed:
    feeds.append(_SEED)
  feeds += [_CAPTURE.format(k) for k in range(len(capture_tensors))]
  concrete = _as_function(graph_def, feeds, outputs + state_refs)
  return Lifted(
      graph_def=graph_def, function=concrete, input_names=input_names,
      input_specs=input_specs,
      variable_indices=variable_indices, variable_specs=variable_specs,
      has_seed=rewrite.has_seed, captures=capture_tensors,
      output_refs=outputs, output_structure=function.structured_outputs,
      state_refs=state_refs, state_indices=state_indices,
      jit_blockers=blockers)


def _as_function(graph_def: graph_pb2.GraphDef, feeds: Sequence[str],
                 fetches: Sequence[str]) -> Any:
  """The graph as a concrete function of the ``feeds`` placeholders.

  Pruning a ``wrap_function`` keeps only what the fetches need, and turns
  the fed placeholders into the function's arguments (none is left in its
  body, which XLA would refuse).
  """
  with tf.init_scope():
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.graph_util.import_graph_def(graph_def, name=""),
        signature=[])
    graph = wrapped.graph
    return wrapped.prune(
        feeds=[graph.get_tensor_by_name(f"{name}:0") for name in feeds],
        fetches=[graph.get_tensor_by_name(ref) for ref in fetches])


# -- the function library ----------------------------------------------------

class _Library:
  """FunctionDefs by name: the traced graph's library, then the context's."""

  def __init__(self, function: Any):
    self._defs: Dict[str, function_pb2.FunctionDef] = {}
    self._gradients: Dict[str, str] = {}
    library = function.graph.as_graph_def().library
    for fdef in library.function:
      self._defs[fdef.signature.name] = fdef
    for gradient in library.gradient:
      self._gradients[gradient.function_name] = gradient.gradient_func

  def get(self, name: str) -> Optional[function_pb2.FunctionDef]:
    fdef = self._defs.get(name)
    if fdef is None:
      try:
        fdef = eager_context.context().get_function_def(name)
      except (ValueError, tf.errors.NotFoundError):
        return None
      self._defs[name] = fdef
    return fdef

  def copy_used(self, nodes: Iterable[node_def_pb2.NodeDef],
                library: Any) -> None:
    """Copies the functions ``nodes`` name in attrs (transitively)."""
    pending = [name for node in nodes for name in _function_attrs(node)]
    done = set()
    while pending:
      name = pending.pop()
      if name in done:
        continue
      done.add(name)
      fdef = self.get(name)
      if fdef is None:
        continue
      library.function.add().CopyFrom(fdef)
      if name in self._gradients:
        library.gradient.add(function_name=name,
                             gradient_func=self._gradients[name])
        pending.append(self._gradients[name])
      for node in fdef.node_def:
        pending.extend(_function_attrs(node))
        if self.get(node.op) is not None:
          pending.append(node.op)


def _function_attrs(node: node_def_pb2.NodeDef) -> List[str]:
  names = []
  for value in node.attr.values():
    if value.HasField("func"):
      names.append(value.func.name)
    elif value.HasField("list"):
      names.extend(f.name for f in value.list.func)
  return [n for n in names if n]


# -- flattening ---------------------------------------------------------------

def _placeholder(name: str, dtype: tf.DType, shape: Any) -> node_def_pb2.NodeDef:
  node = node_def_pb2.NodeDef(name=name, op="Placeholder")
  node.attr["dtype"].type = tf.as_dtype(dtype).as_datatype_enum
  shape = tf.TensorShape(shape)
  node.attr["shape"].shape.CopyFrom(shape.as_proto())
  return node


def _type_attr(dtype: Any) -> attr_value_pb2.AttrValue:
  return attr_value_pb2.AttrValue(type=tf.as_dtype(dtype).as_datatype_enum)


class _Graph:
  """The flat graph under construction: nodes in insertion order."""

  def __init__(self):
    self.nodes: List[node_def_pb2.NodeDef] = []
    self.by_name: Dict[str, node_def_pb2.NodeDef] = {}

  def add(self, node: node_def_pb2.NodeDef) -> node_def_pb2.NodeDef:
    self.nodes.append(node)
    self.by_name[node.name] = node
    return node

  def inline(self, fdef: function_pb2.FunctionDef, prefix: str,
             arg_refs: Sequence[str], control_inputs: Sequence[str],
             library: _Library) -> Tuple[List[str], List[str]]:
    """Adds ``fdef``'s body under ``prefix``; returns (results, effects).

    Args:
      fdef: The function to inline.
      prefix: Name scope of its nodes.
      arg_refs: Flat tensor names feeding its arguments.
      control_inputs: ``^node`` names the call waited for.
      library: Where called functions are looked up.

    Returns:
      (flat tensor names of its results, node names of its side effects).
    """
    ready = None
    if control_inputs:
      ready = self.add(node_def_pb2.NodeDef(
          name=f"{prefix}/hub_inputs_ready", op="NoOp",
          input=list(control_inputs)))
    local = {}
    for arg, ref in zip(fdef.signature.input_arg, arg_refs):
      node = node_def_pb2.NodeDef(name=f"{prefix}/{arg.name}", op="Identity",
                                  input=[ref])
      if ready is not None:
        node.input.append(f"^{ready.name}")
      node.attr["T"].CopyFrom(_type_attr(arg.type))
      self.add(node)
      local[arg.name] = f"{node.name}:0"

    offsets = {n.name: _output_offsets(n, library) for n in fdef.node_def}

    def flat(ref: str) -> str:
      # FunctionDef names: "arg", "^node", "node:output_arg:index".
      if ref.startswith("^"):
        return f"^{prefix}/{ref[1:]}"
      parts = ref.split(":")
      if len(parts) < 3:
        return local[parts[0]]
      node, out, index = parts[0], parts[1], int(parts[2])
      return f"{prefix}/{node}:{offsets[node][out] + index}"

    for node in fdef.node_def:
      inputs = [flat(i) for i in node.input]
      data = [i for i in inputs if not i.startswith("^")]
      control = [i for i in inputs if i.startswith("^")]
      if not inputs and ready is not None:
        control.append(f"^{ready.name}")
      callee = _callee(node, library)
      name = f"{prefix}/{node.name}"
      if callee is not None:
        results, effects = self.inline(callee, name, data, control, library)
        out = node_def_pb2.NodeDef(name=name)
        if results:
          out.op = "IdentityN"
          out.input.extend(results)
          out.attr["T"].list.type.extend(
              a.type for a in callee.signature.output_arg)
        else:
          out.op = "NoOp"
        out.input.extend(f"^{e}" for e in effects)
        self.add(out)
        continue
      copy = node_def_pb2.NodeDef()
      copy.CopyFrom(node)
      copy.name = name
      copy.device = ""
      del copy.input[:]
      copy.input.extend(data + control)
      self.add(copy)
    results = [flat(fdef.ret[a.name]) for a in fdef.signature.output_arg]
    effects = [f"{prefix}/{fdef.control_ret[name]}"
               for name in fdef.signature.control_output
               if name in fdef.control_ret]
    return results, effects

  def reachable(self, refs: Iterable[str]) -> set:
    """Names of the nodes the tensors ``refs`` depend on (and theirs)."""
    seen, stack = set(), [_node_of(r) for r in refs]
    while stack:
      name = stack.pop()
      if name in seen:
        continue
      seen.add(name)
      node = self.by_name.get(name)
      if node is not None:
        stack.extend(_node_of(i) for i in node.input)
    return seen

  def topological(self) -> List[node_def_pb2.NodeDef]:
    """The nodes in an order where every input comes first (ties: added
    first comes first)."""
    position = {n.name: k for k, n in enumerate(self.nodes)}
    waiting = {n.name: 0 for n in self.nodes}
    users: Dict[str, List[str]] = {n.name: [] for n in self.nodes}
    for node in self.nodes:
      for ref in set(_node_of(i) for i in node.input):
        if ref in users:
          users[ref].append(node.name)
          waiting[node.name] += 1
    heap = [position[n] for n, count in waiting.items() if count == 0]
    heapq.heapify(heap)
    order = []
    while heap:
      node = self.nodes[heapq.heappop(heap)]
      order.append(node)
      for user in users[node.name]:
        waiting[user] -= 1
        if waiting[user] == 0:
          heapq.heappush(heap, position[user])
    if len(order) != len(self.nodes):
      raise LiftError(errors.compose(
          "Cannot lift the variables of the model: its graph has a cycle.",
          "Only graphs of TF2 functions (acyclic) can be rewritten.",
          "Report this with the model's handle."))
    return order


def _node_of(ref: str) -> str:
  return ref[1:] if ref.startswith("^") else ref.split(":")[0]


def _callee(node: node_def_pb2.NodeDef,
            library: _Library) -> Optional[function_pb2.FunctionDef]:
  if node.op in _CALL_OPS:
    return library.get(node.attr["f"].func.name)
  if op_def_registry.get(node.op) is None:
    return library.get(node.op)
  return None


def _output_offsets(node: node_def_pb2.NodeDef,
                    library: _Library) -> Dict[str, int]:
  """Output arg name -> index of its first tensor among the node's outputs."""
  op_def = op_def_registry.get(node.op)
  if op_def is None:
    fdef = library.get(node.op)
    if fdef is None:
      raise LiftError(errors.compose(
          f"Cannot lift the variables of the model: op {node.op!r} (node "
          f"{node.name!r}) is neither registered nor a function.",
          "The op's library is not loaded in this process.",
          "Import the library that defines it (e.g. import tensorflow_text) "
          "before making the layer."))
    return {a.name: k for k, a in enumerate(fdef.signature.output_arg)}
  offsets, k = {}, 0
  for arg in op_def.output_arg:
    offsets[arg.name] = k
    if arg.number_attr:
      k += node.attr[arg.number_attr].i
    elif arg.type_list_attr:
      k += len(node.attr[arg.type_list_attr].list.type)
    else:
      k += 1
  return offsets


# -- lifting the state ---------------------------------------------------------

class _StateRewrite:
  """Rewrites ops on variable handles into ops on values (in place)."""

  def __init__(self, graph: _Graph, value_of_placeholder: Mapping[str, int],
               specs: Sequence[tf.TensorSpec], what: str):
    self.graph = graph
    self.specs = specs
    self.what = what
    self.alias: Dict[str, int] = {
        f"{name}:0": k for name, k in value_of_placeholder.items()}
    self.placeholders = dict(value_of_placeholder)
    self.has_seed = False
    self._writes: Dict[int, Tuple[int, str]] = {}
    self._random = 0

  def handle_var(self, ref: str) -> Optional[int]:
    return self.alias.get(ref if ":" in ref else f"{ref}:0")

  def final_writes(self) -> Dict[int, str]:
    return {k: ref for k, (_, ref) in self._writes.items()}

  def run(self) -> None:
    # The handle placeholders become placeholders of the values.
    for name, k in self.placeholders.items():
      node = self.graph.by_name[name]
      node.attr["dtype"].type = self.specs[k].dtype.as_datatype_enum
      node.attr["shape"].shape.CopyFrom(self.specs[k].shape.as_proto())
    seen: Dict[str, Dict[int, Tuple[int, str]]] = {}
    empty: Dict[int, Tuple[int, str]] = {}
    for position, node in enumerate(self.graph.topological()):
      merged = empty
      for ref in node.input:
        upstream = seen.get(_node_of(ref), empty)
        if upstream and upstream is not merged:
          if merged is empty:
            merged = dict(upstream)
          else:
            merged = dict(merged)
            for k, write in upstream.items():
              if k not in merged or merged[k][0] < write[0]:
                merged[k] = write
      handles = [(j, self.alias[ref]) for j, ref in enumerate(node.input)
                 if ref in self.alias]
      if node.op in _RANDOM_OPS:
        self._seed_random(node)
      if handles:
        merged = self._rewrite(node, handles, merged, position)
      if merged:
        seen[node.name] = merged

  def _current(self, k: int, seen: Mapping[int, Tuple[int, str]]) -> str:
    write = seen.get(k)
    return write[1] if write else f"{_VALUE.format(k)}:0"

  def _refuse(self, node: node_def_pb2.NodeDef, k: int, why: str, fix: str):
    raise LiftError(errors.compose(
        f"Cannot lift the variables of {self.what}: op {node.op!r} (node "
        f"{node.name!r}) uses variable {k} as a resource.",
        why, fix), op=node.op, node=node.name)

  def _rewrite(self, node, handles, seen, position):
    op = node.op
    j, k = handles[0]
    if op in ("Identity", "IdentityN"):
      for j, k in handles:
        self.alias[f"{node.name}:{j}"] = k
        node.input[j] = f"{_VALUE.format(k)}:0"
        if op == "Identity":
          node.attr["T"].type = self.specs[k].dtype.as_datatype_enum
        else:
          node.attr["T"].list.type[j] = self.specs[k].dtype.as_datatype_enum
      return seen
    if len(handles) != 1 or j != 0:
      self._refuse(
          node, k, "Only ops that read, assign or gather one variable, or "
          "pass it through Identity, can be rewritten; control flow "
          "(tf.cond, tf.while_loop) and function-valued ops taking "
          "variables cannot.",
          "Use the model with the TensorFlow backend (KERAS_BACKEND="
          "tensorflow), or re-export it with its variables read outside "
          "control flow.")
    dtype = self.specs[k].dtype.as_datatype_enum
    current = self._current(k, seen)
    control = [i for i in node.input if i.startswith("^")]
    if op in _READ_OPS:
      node.op = "Identity"
      node.attr.clear()
      node.attr["T"].type = dtype
      node.input[0] = current
      return seen
    if op in _GATHER_OPS:
      node.op = _GATHER_OPS[op]
      batch_dims = node.attr["batch_dims"].i if "batch_dims" in node.attr \
          else 0
      indices_type = node.attr["Tindices"].type
      node.attr.clear()
      node.attr["Tparams"].type = dtype
      node.attr["Tindices"].type = indices_type
      node.input[0] = current
      if node.op == "GatherV2":
        axis = self.graph.add(_const(f"{node.name}/hub_axis", 0, tf.int32))
        node.input.insert(2, f"{axis.name}:0")
        node.attr["Taxis"].type = types_pb2.DT_INT32
        node.attr["batch_dims"].i = batch_dims
      return seen
    if op in _WRITE_OPS:
      value = node.input[1]
      combine = _WRITE_OPS[op]
      if combine is not None:
        new = node_def_pb2.NodeDef(name=f"{node.name}/hub_new_value",
                                   op=combine, input=[current, value])
        new.attr["T"].type = dtype
        self.graph.add(new)
        value = f"{new.name}:0"
      node.op = "NoOp"
      node.attr.clear()
      del node.input[:]
      node.input.extend([f"^{_node_of(value)}"] + control)
      seen = dict(seen)
      seen[k] = (position, value)
      if k not in self._writes or self._writes[k][0] < position:
        self._writes[k] = (position, value)
      return seen
    if op == "VarIsInitializedOp":
      node.op = "Const"
      node.attr.clear()
      node.attr["dtype"].type = types_pb2.DT_BOOL
      node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(True))
      del node.input[:]
      node.input.extend([f"^{_node_of(current)}"] + control)
      return seen
    if op == "VariableShape":
      out_type = node.attr["out_type"].type
      node.op = "Shape"
      node.attr.clear()
      node.attr["T"].type = dtype
      node.attr["out_type"].type = out_type
      node.input[0] = current
      return seen
    self._refuse(
        node, k, f"hub_adapter can rewrite reads, assignments and gathers of "
        f"a variable into operations on its value, but not {op}.",
        "Use the model with the TensorFlow backend (KERAS_BACKEND="
        "tensorflow).")
    return seen

  def _seed_random(self, node: node_def_pb2.NodeDef) -> None:
    """Turns a stateful random op into its stateless form on the seed."""
    stateless, order = _RANDOM_OPS[node.op]
    if not self.has_seed:
      self.graph.add(_placeholder(_SEED, tf.int32, [2]))
      self.has_seed = True
    offset = self.graph.add(_const(f"{node.name}/hub_seed_offset",
                                   [0, self._random], tf.int32))
    self._random += 1
    seed = node_def_pb2.NodeDef(name=f"{node.name}/hub_seed", op="AddV2",
                                input=[f"{_SEED}:0", f"{offset.name}:0"])
    seed.attr["T"].type = types_pb2.DT_INT32
    self.graph.add(seed)
    data = [i for i in node.input if not i.startswith("^")]
    control = [i for i in node.input if i.startswith("^")]
    named = dict(zip([n for n in ("shape", "minval", "maxval")], data))
    named["seed"] = f"{seed.name}:0"
    attrs = node.attr
    dtype = attrs["Tout"].type if "Tout" in attrs else attrs["dtype"].type
    shape_type = attrs["T"].type
    node.op = stateless
    node.attr.clear()
    node.attr["dtype"].type = dtype
    node.attr["T"].type = shape_type
    node.attr["Tseed"].type = types_pb2.DT_INT32
    del node.input[:]
    node.input.extend([named[n] for n in order] + control)


def _const(name: str, value: Any, dtype: tf.DType) -> node_def_pb2.NodeDef:
  node = node_def_pb2.NodeDef(name=name, op="Const")
  node.attr["dtype"].type = dtype.as_datatype_enum
  node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, dtype))
  return node


# -- what XLA cannot compile -------------------------------------------------

_UNCOMPILABLE_TYPES = {
    types_pb2.DT_STRING: "string tensors (XLA has no string type)",
    types_pb2.DT_RESOURCE: "lookup tables or other resources that are not "
                           "variables",
}


def _jit_blockers(graph_def: graph_pb2.GraphDef,
                  captures: Sequence[Any]) -> List[JitBlocker]:
  """Nodes of the lifted graph (and its functions) XLA cannot compile."""
  from hub_adapter import _op_library_table  # pylint: disable=g-import-not-at-top
  library_of, prefixes = {}, []
  for library, entry in _op_library_table.LIBRARIES.items():
    for op in entry.get("ops", ()):
      library_of[op] = library
    prefixes.extend((p, library) for p in entry.get("prefixes", ()))

  def op_library(op: str) -> Optional[str]:
    if op in library_of:
      return library_of[op]
    return next((lib for p, lib in prefixes if op.startswith(p)), None)

  found = []

  def scan(nodes, where):
    for node in nodes:
      why = None
      library = op_library(node.op)
      if library is not None:
        why = f"ops of {library}, which has no XLA kernels"
      else:
        types = []
        for value in node.attr.values():
          types.extend([value.type] if value.type else value.list.type)
        op_def = op_def_registry.get(node.op)
        if op_def is not None:
          types.extend(a.type for a in list(op_def.input_arg)
                       + list(op_def.output_arg) if a.type)
        hit = [t for t in types if t in _UNCOMPILABLE_TYPES]
        if hit:
          why = _UNCOMPILABLE_TYPES[hit[0]]
      if why and not (node.op == "Placeholder"
                      and node.name.startswith("hub_capture_")):
        found.append(JitBlocker(node.op, f"{where}{node.name}", why))

  scan(graph_def.node, "")
  for fdef in graph_def.library.function:
    scan(fdef.node_def, f"{fdef.signature.name}/")
  for k, capture in enumerate(captures):
    if capture.dtype in (tf.string, tf.resource):
      why = _UNCOMPILABLE_TYPES[capture.dtype.as_datatype_enum]
      found.append(JitBlocker("Placeholder", _CAPTURE.format(k), why))
  return found
