"""The state of one Module instance: its variables, tables and assets.

When a :class:`~hub_adapter.tf1.module.Module` is built, the state part of
the chosen graph variant is imported once into the caller's graph under the
instance's scope (``module/``, ``module_1/``, ...): variables (from the
``variables`` collection, trainable only when the Module is), lookup tables
with their initializers (``table_initializer`` collection, so
``tf.compat.v1.tables_initializer()`` covers them), asset constants pointing
into the module's folder and, for a trainable Module, the regularization
losses. Variables are then set up to restore from the module's checkpoint:
running ``tf.compat.v1.global_variables_initializer()`` loads the published
values.

Each signature call is wired to this state (see ``apply.py``) rather than
creating its own, so one instance called many times shares its variables and
two instances never do.
"""
from __future__ import annotations

import dataclasses
import weakref
from typing import Any, Dict, List, Union

from hub_adapter import errors
from hub_adapter import runtime
from hub_adapter.tf1 import graph_surgery
from hub_adapter.tf1 import hub_protos
from hub_adapter.tf1.spec import NativeModuleSpec, format_tags, tags_key

GLOBAL_VARIABLES = hub_protos.GLOBAL_VARIABLES
TRAINABLE_VARIABLES = hub_protos.TRAINABLE_VARIABLES
MODEL_VARIABLES = hub_protos.MODEL_VARIABLES
TABLE_INITIALIZERS = hub_protos.TABLE_INITIALIZERS
ASSET_FILEPATHS = hub_protos.ASSET_FILEPATHS
REGULARIZATION_LOSSES = hub_protos.REGULARIZATION_LOSSES
UPDATE_OPS = hub_protos.UPDATE_OPS
COND_CONTEXT = hub_protos.COND_CONTEXT
WHILE_CONTEXT = hub_protos.WHILE_CONTEXT

VariableOrParts = Union[Any, List[Any]]
# Graph variants whose ops were found registered, per spec.
_OPS_CHECKED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def state_collections(trainable: bool) -> List[str]:
  """Collections the state import adds to the caller's graph."""
  keys = [GLOBAL_VARIABLES, MODEL_VARIABLES, TABLE_INITIALIZERS,
          ASSET_FILEPATHS, COND_CONTEXT, WHILE_CONTEXT]
  if trainable:
    keys += [TRAINABLE_VARIABLES, REGULARIZATION_LOSSES]
  return keys


@dataclasses.dataclass
class ModuleState:
  """What one instance's state import created.

  Attributes:
    scope: The absolute name scope of the state, without trailing ``/``.
    variable_map: Module variable name -> ``tf.Variable``, or the list of
      parts (by offset) for a partitioned variable.
    state_tensors: Tensor name in the module graph -> the instance's tensor,
      for every output of a state op; calls map these as inputs.
    state_ops: Node name in the module graph -> the instance's op.
    asset_paths: Asset node name -> file it reads.
    regularization_losses: Losses added to the caller's collection (empty
      unless trainable).
    trainable_variables: Variables added to TRAINABLE_VARIABLES (empty
      unless trainable).
  """
  scope: str
  variable_map: Dict[str, VariableOrParts]
  state_tensors: Dict[str, Any]
  state_ops: Dict[str, Any]
  asset_paths: Dict[str, str]
  regularization_losses: List[Any]
  trainable_variables: List[Any] = dataclasses.field(default_factory=list)

  @property
  def variables(self) -> List[Any]:
    """All variables, partitions flattened, sorted by module name."""
    result = []
    for _, value in sorted(self.variable_map.items()):
      result.extend(value if isinstance(value, list) else [value])
    return result


def prepare_meta_graph(spec: NativeModuleSpec, tags, scope: str):
  """Returns an edited copy of a variant's meta graph for importing.

  Asset constants get their files and ``shared_name`` attributes get the
  instance scope.

  Raises:
    ModelFormatError: the graph uses ops unknown to this TensorFlow, or its
      assets are malformed.
  """
  meta_graph = graph_surgery.copy_meta_graph(spec.get_meta_graph(tags))
  checked = _OPS_CHECKED.setdefault(spec, set())
  unknown = [] if tags_key(tags) in checked else (
      graph_surgery.missing_ops(meta_graph))
  if unknown:
    raise errors.ModelFormatError(errors.compose(
        f"The graph variant {format_tags(tags)} of "
        f"{spec._describe()} uses ops this TensorFlow does not know: "  # pylint: disable=protected-access
        f"{errors.choices(unknown)}.",
        "Ops from add-on libraries register themselves when their Python "
        "package is imported.",
        "Import the library that defines them first (often "
        "`import tensorflow_text`), or use a TensorFlow version that has "
        "them.", {"folder": spec.module_dir}), ops=unknown)
  checked.add(tags_key(tags))
  graph_surgery.set_asset_paths(meta_graph, spec.asset_node_paths(tags),
                                source=spec._describe())  # pylint: disable=protected-access
  graph_surgery.prefix_shared_names(meta_graph, scope)
  return meta_graph


def _state_roots(meta_graph, trainable: bool) -> List[str]:
  """The nodes the state import must contain."""
  roots = set(graph_surgery.state_node_names(meta_graph.graph_def))
  roots |= graph_surgery.variable_node_names(
      meta_graph, [GLOBAL_VARIABLES, TRAINABLE_VARIABLES, MODEL_VARIABLES])
  keys = [TABLE_INITIALIZERS, ASSET_FILEPATHS]
  if trainable:
    keys.append(REGULARIZATION_LOSSES)
  roots |= graph_surgery.collection_node_names(meta_graph, keys)
  return sorted(roots)


def create_state(spec: NativeModuleSpec, tags, trainable: bool,
                 name: str) -> ModuleState:
  """Imports the state of a graph variant under a fresh scope ``name``.

  Must be called in the name scope where ``name`` is unused; the caller
  (Module) picks it.

  Args:
    spec: The module spec.
    tags: The graph variant.
    trainable: Whether variables join TRAINABLE_VARIABLES and regularization
      losses join REGULARIZATION_LOSSES.
    name: The relative scope name, unused in the current name scope.

  Returns:
    The :class:`ModuleState`.

  Raises:
    ModelFormatError: unknown ops, bad assets, or a checkpoint that does not
      match the graph's variables.
  """
  tf = runtime.tf()
  from tensorflow.python.framework import meta_graph as meta_graph_lib  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  graph = tf.compat.v1.get_default_graph()
  scope = graph.unique_name(name, mark_as_used=False)
  meta_graph = prepare_meta_graph(spec, tags, scope)
  graph_surgery.prune(meta_graph, _state_roots(meta_graph, trainable))
  wanted = set(state_collections(trainable))
  # The importer fills collections while it restores variables, so count
  # the caller's entries before and after.
  before = {key: len(graph.get_collection(key)) for key in wanted}
  meta_graph_lib.import_scoped_meta_graph(
      meta_graph, clear_devices=True, import_scope=name,
      restore_collections_predicate=lambda key: key in wanted)
  new_variables = graph.get_collection(GLOBAL_VARIABLES)[
      before[GLOBAL_VARIABLES]:]
  new_losses = (graph.get_collection(REGULARIZATION_LOSSES)[
      before[REGULARIZATION_LOSSES]:] if trainable else [])
  new_trainable = (graph.get_collection(TRAINABLE_VARIABLES)[
      before[TRAINABLE_VARIABLES]:] if trainable else [])

  state_ops, state_tensors = {}, {}
  output_counts = graph_surgery.node_output_counts(meta_graph)
  for node_name in graph_surgery.state_node_names(meta_graph.graph_def):
    op = graph.get_operation_by_name(f"{scope}/{node_name}")
    state_ops[node_name] = op
    for index in range(min(len(op.outputs), output_counts[node_name])):
      state_tensors[f"{node_name}:{index}"] = op.outputs[index]

  variable_map = _variable_map(new_variables, scope)
  state = ModuleState(
      scope=scope, variable_map=variable_map, state_tensors=state_tensors,
      state_ops=state_ops, asset_paths=dict(spec.asset_node_paths(tags)),
      regularization_losses=list(new_losses),
      trainable_variables=list(new_trainable))
  if variable_map and spec.checkpoint_prefix:
    restore_from_checkpoint(state, spec.checkpoint_prefix,
                            source=spec._describe())  # pylint: disable=protected-access
  return state


def _variable_map(variables, scope: str) -> Dict[str, VariableOrParts]:
  """Names variables as in the module (no scope, no ``:0``), grouping the
  parts of partitioned variables into lists ordered by offset."""
  prefix = scope + "/"
  single, parts = {}, {}
  for var in variables:
    op_name = var.op.name
    local = op_name[len(prefix):] if op_name.startswith(prefix) else op_name
    slice_info = getattr(var, "_save_slice_info", None)
    if slice_info is None:
      single[local] = var
      continue
    full = slice_info.full_name
    full = full[len(prefix):] if full.startswith(prefix) else full
    parts.setdefault(full, []).append((tuple(slice_info.var_offset), var))
  clash = sorted(set(single) & set(parts))
  if clash:
    raise errors.ModelFormatError(errors.compose(
        f"The module has variables that are both whole and partitioned: "
        f"{errors.choices(clash)}.", "A name must denote one variable.",
        "Re-export the module."))
  result: Dict[str, VariableOrParts] = dict(single)
  for full, pieces in parts.items():
    pieces.sort(key=lambda item: item[0])
    result[full] = [var for _, var in pieces]
  return result


def _full_shape(value: VariableOrParts) -> List[int]:
  if isinstance(value, list):
    info = value[0]._save_slice_info  # pylint: disable=protected-access
    return list(info.full_shape)
  return value.shape.as_list()


def restore_from_checkpoint(state: ModuleState, prefix: str,
                            source: str = "the module") -> None:
  """Makes the variables' initializers load their values from a checkpoint.

  After this, ``global_variables_initializer()`` (or each variable's
  ``initializer``) assigns the published values.

  Args:
    state: The instance state.
    prefix: The checkpoint prefix (``.../variables/variables``).
    source: What to name in errors.

  Raises:
    ModelFormatError: the checkpoint cannot be read, lacks a variable, or
      stores it with another shape.
  """
  tf = runtime.tf()
  try:
    reader = tf.train.load_checkpoint(prefix)
    stored = reader.get_variable_to_shape_map()
  except (tf.errors.OpError, ValueError) as e:
    raise errors.ModelFormatError(errors.compose(
        f"Cannot read the variables checkpoint of {source}.",
        f"{type(e).__name__}: {e}",
        "Download or export the module again; variables/ is incomplete.",
        {"checkpoint": prefix})) from e
  missing = sorted(n for n in state.variable_map if n not in stored)
  mismatched = sorted(
      f"{n} (graph {_full_shape(v)}, checkpoint {stored[n]})"
      for n, v in state.variable_map.items()
      if n in stored and list(stored[n]) != _full_shape(v))
  if missing or mismatched:
    raise errors.ModelFormatError(errors.compose(
        f"The variables checkpoint of {source} does not match its graph.",
        (f"Missing from the checkpoint: {errors.choices(missing)}. "
         if missing else "")
        + (f"Shape differs: {', '.join(mismatched)}." if mismatched else ""),
        "Export the module again so that graph and checkpoint agree.",
        {"checkpoint": prefix}), missing=missing, mismatched=mismatched)
  tf.compat.v1.train.init_from_checkpoint(
      prefix, {name: value for name, value in state.variable_map.items()})


def variable_signatures(meta_graph) -> Dict[str, tuple]:
  """Variable name -> (dtype name, shape) declared by a meta graph."""
  tf = runtime.tf()
  from tensorflow.core.framework import variable_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  nodes = {node.name: node for node in meta_graph.graph_def.node}
  result = {}
  collection = meta_graph.collection_def.get(GLOBAL_VARIABLES)
  if collection is None:
    return result
  for data in collection.bytes_list.value:
    var = variable_pb2.VariableDef()
    var.ParseFromString(data)
    name = graph_surgery.node_name(var.variable_name)
    node = nodes.get(name)
    if node is None:
      result[name] = (None, None)
      continue
    dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).name if (
        "dtype" in node.attr) else None
    shape = (tuple(tf.TensorShape(node.attr["shape"].shape).as_list())
             if "shape" in node.attr else None)
    result[name] = (dtype, shape)
  return result


def check_variants_agree(spec: NativeModuleSpec, tags_a, tags_b) -> None:
  """Raises unless two graph variants declare the same variables.

  One instance's variables serve every variant applied with it (e.g. the
  ``{"train"}`` graph for training and the empty-tags graph for inference),
  which only works when both graphs declare identical variables.

  Raises:
    TagSetError: a variant does not exist.
    ModelFormatError: names, dtypes or shapes differ; the message lists the
      differences.
  """
  a = variable_signatures(spec.get_meta_graph(tags_a))
  b = variable_signatures(spec.get_meta_graph(tags_b))
  if a == b:
    return
  only_a = sorted(set(a) - set(b))
  only_b = sorted(set(b) - set(a))
  differ = sorted(f"{n}: {a[n][0]} {list(a[n][1] or [])} vs "
                  f"{b[n][0]} {list(b[n][1] or [])}"
                  for n in set(a) & set(b) if a[n] != b[n])
  ta, tb = format_tags(tags_a), format_tags(tags_b)
  details = []
  if only_a:
    details.append(f"only in {ta}: {errors.choices(only_a)}")
  if only_b:
    details.append(f"only in {tb}: {errors.choices(only_b)}")
  if differ:
    details.append("dtype/shape differ: " + "; ".join(differ))
  raise errors.ModelFormatError(errors.compose(
      f"The graph variants {ta} and {tb} of {spec._describe()} declare "  # pylint: disable=protected-access
      "different variables, so they cannot share one set of variables.",
      "; ".join(details) + ".",
      f"Load one variant only: pass tags={ta} (or {tb}) and do not switch "
      "with training=..., or re-export the module so that every variant "
      "declares the same variables.", {"folder": spec.module_dir}),
      tags=(sorted(tags_a or ()), sorted(tags_b or ())),
      only_in_first=only_a, only_in_second=only_b, differ=differ)
