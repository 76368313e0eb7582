"""TF2 SavedModels in TF1 compat mode (``tf2_saved_model`` x ``tf1_compat``).

``tf.saved_model.load`` also runs while a graph is being built (after
``tf.compat.v1.disable_v2_behavior()``, or inside ``with
tf.Graph().as_default():``). It then adds the model's variables to the
graph, with the ops that restore their saved values as their initializers,
and puts the ops that restore and initialize lookup tables into
``TABLE_INITIALIZERS``. So the usual TF1 start-up initializes everything::

  model = hub_adapter.load(handle, trainable=True)
  outputs = model(images, training=True)
  ...
  with tf.compat.v1.Session() as sess:
    sess.run([tf.compat.v1.global_variables_initializer(),
              tf.compat.v1.tables_initializer()])

(``global_variables_initializer`` *restores* the SavedModel's values; it does
not draw new random ones. ``tf.compat.v1.train.MonitoredSession`` and
Estimator's scaffold run the same two initializers.)

On top of what TensorFlow does, :func:`load` puts the graph in the state a
TF1 training loop expects, as ``hub.Module`` did:

- every model variable is in ``GLOBAL_VARIABLES``;
- with ``trainable=True`` the model's trainable variables are in
  ``TRAINABLE_VARIABLES`` (so ``optimizer.minimize(loss)`` updates them) and
  its regularization losses are in ``REGULARIZATION_LOSSES``; with
  ``trainable=False`` none of its variables is in ``TRAINABLE_VARIABLES``;
- a call with ``training=True`` whose function writes variables (batch-norm
  moving statistics) is an update op: it is listed in ``model.update_ops``
  and, with ``trainable=True``, added to ``UPDATE_OPS``. The statistics are
  written when that call op runs, which any fetch of its outputs does;
  listing it in ``UPDATE_OPS`` keeps the usual
  ``with tf.control_dependencies(UPDATE_OPS)`` idiom correct and does not run
  it twice.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Optional, Set

import tensorflow as tf

from hub_adapter import errors
from hub_adapter.model import LoadRequest
from hub_adapter.support import Mode
from hub_adapter.tf2 import common

_KEYS = tf.compat.v1.GraphKeys

# Ops that write a resource variable; a function containing one (directly or
# in a function it calls) updates state when it runs.
_WRITE_OPS = frozenset({
    "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
    "ResourceScatterUpdate", "ResourceScatterAdd", "ResourceScatterSub",
    "ResourceScatterMul", "ResourceScatterDiv", "ResourceScatterMin",
    "ResourceScatterMax", "ResourceScatterNdUpdate", "ResourceScatterNdAdd",
    "ResourceScatterNdSub", "ResourceStridedSliceAssign",
})


def _function_names(node_def: Any) -> Iterable[str]:
  """Names of the functions a node calls (``f``, branches, bodies, ...)."""
  for value in node_def.attr.values():
    if value.HasField("func") and value.func.name:
      yield value.func.name
    if value.HasField("list"):
      for func in value.list.func:
        if func.name:
          yield func.name


def writes_variables(op: Any) -> bool:
  """Whether running ``op`` writes a resource variable.

  Looks through the functions the op calls, recursively, in the graph's
  function library.
  """
  library = {f.signature.name: f
             for f in op.graph.as_graph_def().library.function}
  pending = list(_function_names(op.node_def))
  seen: Set[str] = set()
  while pending:
    name = pending.pop()
    if name in seen or name not in library:
      continue
    seen.add(name)
    for node in library[name].node_def:
      if node.op in _WRITE_OPS or node.op.startswith("ResourceApply"):
        return True
      pending.extend(_function_names(node))
  return op.type in _WRITE_OPS


class GraphSavedModel(common.SavedModelModel):
  """A TF2 SavedModel loaded into a TF1 graph.

  Calls return graph tensors; run them in a ``tf.compat.v1.Session`` after
  the initializers described in this module's docstring.

  Attributes beyond :class:`~hub_adapter.tf2.common.SavedModelModel`:
    graph: The graph the model was loaded into; call it only there.
    regularization_losses: Scalar tensors, one per function in the model's
      ``regularization_losses`` (made once, at load time; in
      ``REGULARIZATION_LOSSES`` when ``trainable=True``).
    update_ops: The call ops of ``training=True`` calls that write
      variables (in ``UPDATE_OPS`` when ``trainable=True``).
  """

  def __init__(self, request: LoadRequest, raw: Any, graph: Any,
               regularization_losses: List[Any]):
    super().__init__(request, raw)
    self._graph = graph
    self._regularization_tensors = list(regularization_losses)
    self._update_ops: List[Any] = []

  @property
  def graph(self) -> Any:
    return self._graph

  @property
  def regularization_losses(self) -> List[Any]:
    return list(self._regularization_tensors)

  @property
  def update_ops(self) -> List[Any]:
    return list(self._update_ops)

  def __call__(self, inputs=None, training: Optional[bool] = None, **kwargs):
    current = tf.compat.v1.get_default_graph()
    if current is not self._graph:
      raise errors.GraphMismatchError(errors.compose(
          f"The model {self.handle!r} was loaded into another tf.Graph than "
          "the one being built now.",
          "In TF1 compat mode a model's variables live in the graph it was "
          "loaded into.",
          "Call hub_adapter.load() again inside this graph's "
          "as_default() block.",
          self._facts()), handle=self.handle)
    result = super().__call__(inputs, training=training, **kwargs)
    if training is not None and training is not False and (
        self.signature is None and self._accepts_training):
      self._record_updates(result)
    return result

  def _record_updates(self, result: Any) -> None:
    ops = []
    for tensor in tf.nest.flatten(result):
      op = getattr(tensor, "op", None)
      if op is not None and op not in ops and writes_variables(op):
        ops.append(op)
    for op in ops:
      self._update_ops.append(op)
      if self.trainable:
        updates = self._graph.get_collection_ref(_KEYS.UPDATE_OPS)
        if op not in updates:
          updates.append(op)


def _add_unique(graph: Any, key: str, items: Iterable[Any]) -> None:
  ref = graph.get_collection_ref(key)
  present = {id(x) for x in ref}
  for item in items:
    if id(item) not in present:
      ref.append(item)
      present.add(id(item))


def _remove(graph: Any, key: str, items: Iterable[Any]) -> None:
  ref = graph.get_collection_ref(key)
  drop = {id(x) for x in items}
  ref[:] = [x for x in ref if id(x) not in drop]


def load(request: LoadRequest) -> GraphSavedModel:
  """Loads a TF2 SavedModel into the default graph (TF1 compat mode).

  Args:
    request: The validated request (``load()`` builds it).

  Returns:
    A :class:`GraphSavedModel` whose graph is the current default graph.

  Raises:
    HubAdapterError: called outside TF1 compat mode (``load()`` picks the
      eager backend there).
    ModelFormatError: TensorFlow cannot load the folder.
    SignatureError: ``output_key`` is not among ``__call__``'s outputs.
  """
  common.require_cell(request, "hub_adapter.tf2.graph:load",
                      "the TF1 compat cells of the support table",
                      Mode.TF1_COMPAT)
  graph = tf.compat.v1.get_default_graph()
  raw = common.load_saved_model(request)
  common.check_call_output_key(request, raw)
  variables = common.list_variables(raw)
  _add_unique(graph, _KEYS.GLOBAL_VARIABLES, variables)
  if request.trainable:
    _add_unique(graph, _KEYS.TRAINABLE_VARIABLES,
                common.list_trainable_variables(raw))
  else:
    _remove(graph, _KEYS.TRAINABLE_VARIABLES, variables)
  losses = []
  with tf.name_scope("regularization_losses"):
    for loss in getattr(raw, "regularization_losses", None) or []:
      losses.append(loss() if callable(loss) else loss)
  if request.trainable:
    _add_unique(graph, _KEYS.REGULARIZATION_LOSSES, losses)
  return GraphSavedModel(request, raw, graph, losses)
