"""``Module``: a TF1 Hub module instantiated in the current graph.

A Module is the graph-mode way to reuse a published piece of a TF1 model.
Building one adds the module's state to the current ``tf.Graph`` once, under
a scope of its own (``module/``, then ``module_1/`` ...): its variables
(restored from the module's checkpoint when the variables initializer runs),
lookup tables (initialized by ``tf.compat.v1.tables_initializer()``) and the
asset files they read. Calling it applies one of the module's signatures to
inputs, importing that signature's ops under a new name scope
(``module_apply_default``, ...) wired to the instance's state, so repeated
calls share variables while separate instances never do.

Graph variants are picked with ``tags`` (the empty set by default; many
modules offer ``{"train"}`` for training, with batch norm in training mode
and dropout). ``trainable=True`` puts the variables into
TRAINABLE_VARIABLES, the regularization losses into REGULARIZATION_LOSSES
and, at each call, the variant's update ops into UPDATE_OPS, so a TF1
training loop (or an Estimator ``model_fn``) fine-tunes the module like its
own layers.

The class keeps ``tensorflow_hub.Module``'s (0.15) constructor, call and
attribute names. It needs graph mode (TF1 compat mode, a ``tf.Graph``
context, or ``tf.compat.v1.wrap_function``); in eager TF2, use
``hub_adapter.load(handle)``.

Example::

  tf.compat.v1.disable_v2_behavior()
  module = hub_adapter.Module("/path/to/text_embedding", trainable=True)
  embeddings = module(["hello world"])          # the "default" signature
  outputs = module(images, signature="image_feature_vector", as_dict=True)
  with tf.compat.v1.Session() as sess:
    sess.run([tf.compat.v1.global_variables_initializer(),
              tf.compat.v1.tables_initializer()])
    sess.run(embeddings)
"""
from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Optional

from hub_adapter import errors
from hub_adapter import runtime
from hub_adapter import support
from hub_adapter.tf1 import apply as apply_lib
from hub_adapter.tf1 import state as state_lib
from hub_adapter.tf1.spec import (DEFAULT_SIGNATURE, ModuleSpec,
                                  NativeModuleSpec, as_module_spec,
                                  format_tags, tags_key)


def require_graph_mode(handle: Optional[str], trainable: bool,
                       created: bool = False) -> None:
  """Raises UnsupportedOperationError when executing eagerly.

  The refusals are the support table's: a spec made by
  ``create_module_spec`` (``created``) is being created (limit
  ``module_create_eager``); fine-tuning a TF1 Hub module in TF2 is an
  unsupported cell; an inference Module is limit ``module_load_eager``,
  which names ``hub_adapter.load``.

  Args:
    handle: The handle, if the Module was given one.
    trainable: Whether the Module is to be trainable.
    created: Whether the spec comes from ``create_module_spec``.

  Raises:
    UnsupportedOperationError: executing eagerly.
  """
  tf = runtime.tf()
  if not tf.executing_eagerly():
    return
  fmt, mode = support.Format.TF1_HUB, support.Mode.TF2
  if created:
    support.refuse("module_create_eager", mode,
                   detail="hub_adapter.Module(spec) was called outside any "
                   "graph.")
  if trainable:
    support.require(fmt, support.Operation.FINE_TUNE, mode, handle=handle,
                    detail="hub_adapter.Module needs graph mode.")
  support.refuse("module_load_eager", mode, handle=handle,
                 detail="hub_adapter.Module needs graph mode.")


def _pick_scope(name: str):
  """Returns (parent name scope, relative name) for a new instance.

  The name must be unused both as a variable scope (so the module's
  variables cannot collide with ``get_variable`` ones) and as a name scope
  under the current variable scope; ``module``, ``module_1``, ... are tried
  as variable scopes are uniquified.

  Raises:
    GraphMismatchError: the variable scope is free but its name scope was
      taken by something else.
  """
  tf = runtime.tf()
  graph = tf.compat.v1.get_default_graph()
  outer = tf.compat.v1.get_variable_scope().name
  parent = outer + "/" if outer else ""
  with tf.compat.v1.name_scope(parent or None):
    with tf.compat.v1.variable_scope(
        None, default_name=name, auxiliary_name_scope=False) as scope:
      absolute = scope.name
    taken = graph.unique_name(name, mark_as_used=False)
  if taken != absolute:
    raise errors.GraphMismatchError(errors.compose(
        f"Cannot create Module {name!r}: the variable scope {absolute!r} is "
        f"free but its name scope is taken (next free: {taken!r}).",
        "A Module's variables and ops must live under one unused scope.",
        "Pass another name=..., or create the Module outside the conflicting "
        "name scope."))
  return parent, absolute.split("/")[-1]


class Module:
  """A TF1 Hub module instantiated in the current graph.

  Args:
    spec: A :class:`ModuleSpec` (``load_module_spec``/``create_module_spec``)
      or a handle or folder to load one from.
    trainable: Put variables into TRAINABLE_VARIABLES and, when applied,
      regularization losses and update ops into their collections.
    name: Scope name for the instance's state; uniquified (``module_1``).
    tags: The graph variant (a set of strings); None means the empty set.

  Raises:
    UnsupportedOperationError: executing eagerly (TF2); see
      ``hub_adapter.load`` for TF1 modules in TF2, and build a Module of a
      created spec inside ``with tf.compat.v1.Graph().as_default():``.
    TagSetError: the spec has no variant with these tags (a
      SignatureError, hence a ValueError as in tensorflow_hub).
    ModelFormatError: the module cannot be read or uses unknown ops.
  """

  def __init__(self, spec, trainable: bool = False, name: str = "module",
               tags=None):
    handle = spec if isinstance(spec, str) else None
    created = (isinstance(spec, NativeModuleSpec)
               and spec.module_dir is None)
    require_graph_mode(handle, bool(trainable), created)
    tf = runtime.tf()
    self._graph = tf.compat.v1.get_default_graph()
    self._spec = as_module_spec(spec)
    self._trainable = bool(trainable)
    self._tags = tags_key(tags)
    if not isinstance(self._spec, NativeModuleSpec):
      raise errors.ModelFormatError(errors.compose(
          f"Module cannot instantiate a {type(self._spec).__name__}.",
          "Only specs of the TF1 Hub format (NativeModuleSpec) exist.",
          "Use hub_adapter.load_module_spec or create_module_spec."))
    self._spec.get_meta_graph(self._tags)  # TagSetError for unknown tags.
    parent, self._name = _pick_scope(name)
    # Clear control dependencies so a Module built deep inside a model
    # does not tie its state to the caller's ops; calls keep them.
    with tf.control_dependencies(None):
      with tf.compat.v1.name_scope(parent or None):
        self._state = state_lib.create_state(
            self._spec, self._tags, self._trainable, self._name)
    self._saver = None
    self._agreeing = set()

  # Calls -------------------------------------------------------------------
  def __call__(self, inputs=None, _sentinel=None, signature=None,
               as_dict=None):
    """Applies a signature to inputs in the current graph.

    Args:
      inputs: A dict from input name to value, or a bare value when the
        signature has one input, or None when it has none. Values are
        converted to tensors of the signature's dtypes.
      _sentinel: Keeps the other arguments keyword-only.
      signature: The signature name; None means ``"default"``.
      as_dict: Return all outputs as a dict instead of the ``default`` one.

    Returns:
      The ``default`` output, or a dict of all outputs.

    Raises:
      SignatureError: no such signature in this graph variant.
      InputTypeError: inputs do not fit the signature (also a TypeError).
      OutputSelectionError: no ``default`` output and not ``as_dict``.
      GraphMismatchError: called in a graph other than the Module's.
    """
    if _sentinel is not None:
      raise errors.InputTypeError(errors.compose(
          "Module.__call__ takes signature= and as_dict= by name only; "
          "received a second positional argument.",
          fix="Call module(inputs, signature=..., as_dict=...)."))
    outputs = self.apply_signature(inputs, signature=signature)
    return apply_lib.select_outputs(outputs, as_dict,
                                    signature or DEFAULT_SIGNATURE)

  def apply_signature(self, inputs=None, signature=None, tags=None
                      ) -> Dict[str, Any]:
    """Applies a signature of any graph variant with this instance's state.

    ``module(inputs, signature=s, as_dict=True)`` is
    ``module.apply_signature(inputs, s)``. Passing ``tags`` of another graph
    variant (e.g. ``{"train"}`` on a Module built for ``set()``) applies that
    variant's signature to the same variables; the variants must declare the
    same variables (name, dtype, shape).

    Args:
      inputs: As for :meth:`__call__`.
      signature: The signature name; None means ``"default"``.
      tags: The graph variant to apply; None means the Module's own.

    Returns:
      A dict of all outputs.

    Raises:
      As :meth:`__call__`; ModelFormatError when the variants' variables
      differ.
    """
    tf = runtime.tf()
    if tf.compat.v1.get_default_graph() is not self._graph:
      raise errors.GraphMismatchError(errors.compose(
          f"Module {self._state.scope!r} is applied in a graph other than "
          "the one it was created in.",
          "A Module's variables and tables live in one tf.Graph.",
          "Create the Module inside the graph where you call it."))
    tags = self._tags if tags is None else tags_key(tags)
    if tags != self._tags and tags not in self._agreeing:
      state_lib.check_variants_agree(self._spec, self._tags, tags)
      self._agreeing.add(tags)
    signature = signature or DEFAULT_SIGNATURE
    infos = self._spec.get_input_info_dict(signature, tags)
    self._check_types(signature, tags)
    tensors = apply_lib.convert_inputs(inputs, infos, signature)
    name = f"{self._name}_apply_{signature.replace(':', '_')}"
    return apply_lib.import_signature(
        self._spec, tags, self._state, signature, tensors, self._trainable,
        name)

  def _check_types(self, signature: str, tags) -> None:
    for kind, infos in (
        ("input", self._spec.get_input_info_dict(signature, tags)),
        ("output", self._spec.get_output_info_dict(signature, tags))):
      for key, info in sorted(infos.items()):
        if not info.is_supported_type:
          raise errors.ModelFormatError(errors.compose(
              f"Signature {signature!r} has {kind} {key!r} of type "
              f"{info.type_spec.value_type.__name__}, which Module cannot "
              "pass.", "Supported: Tensor, SparseTensor, RaggedTensor.",
              "Use another signature."))

  # Description -------------------------------------------------------------
  @property
  def spec(self) -> NativeModuleSpec:
    return self._spec

  @property
  def tags(self) -> FrozenSet[str]:
    return self._tags

  @property
  def trainable(self) -> bool:
    return self._trainable

  @property
  def name(self) -> str:
    """The instance's scope name relative to its parent (``module_1``)."""
    return self._name

  @property
  def scope(self) -> str:
    """The absolute name scope of the instance's state."""
    return self._state.scope

  @property
  def graph(self):
    return self._graph

  def get_signature_names(self) -> List[str]:
    return self._spec.get_signature_names(tags=self._tags)

  def get_input_info_dict(self, signature=None):
    return self._spec.get_input_info_dict(signature=signature,
                                          tags=self._tags)

  def get_output_info_dict(self, signature=None):
    return self._spec.get_output_info_dict(signature=signature,
                                           tags=self._tags)

  def get_attached_message(self, key, message_type, required=False):
    return self._spec.get_attached_message(key, message_type,
                                           tags=self._tags, required=required)

  # State -------------------------------------------------------------------
  @property
  def variable_map(self) -> Dict[str, Any]:
    """Module variable name (no scope, no ``:0``) -> ``tf.Variable``, or a
    list of the parts of a partitioned variable."""
    return dict(self._state.variable_map)

  @property
  def variables(self) -> List[Any]:
    """All variables, partitions flattened, sorted by module name."""
    return self._state.variables

  @property
  def trainable_variables(self) -> List[Any]:
    """Variables in TRAINABLE_VARIABLES (none unless trainable)."""
    return list(self._state.trainable_variables)

  @property
  def regularization_losses(self) -> List[Any]:
    """Losses added to REGULARIZATION_LOSSES (only when trainable)."""
    return list(self._state.regularization_losses)

  @property
  def asset_paths(self) -> Dict[str, str]:
    """Asset node name -> file the instance reads."""
    return dict(self._state.asset_paths)

  @property
  def saver(self):
    """A ``tf.compat.v1.train.Saver`` over :attr:`variable_map`, made on
    first use (None when the module has no variables)."""
    if self._saver is None and self._state.variable_map:
      tf = runtime.tf()
      with self._graph.as_default():
        self._saver = tf.compat.v1.train.Saver(
            self._state.variable_map, sharded=True,
            write_version=tf.compat.v1.train.SaverDef.V2)
    return self._saver

  def export(self, path, session):
    """Writes the module with the variable values of ``session`` to ``path``.

    Raises:
      GraphMismatchError: the default graph or the session's graph is not
        the Module's.
    """
    tf = runtime.tf()
    if tf.compat.v1.get_default_graph() is not self._graph:
      raise errors.GraphMismatchError(errors.compose(
          "Module.export is called with a default graph other than the "
          "Module's.", fix="Export inside `with module.graph.as_default():`."))
    if session.graph is not self._graph:
      raise errors.GraphMismatchError(errors.compose(
          "Module.export got a session for another graph.",
          fix="Pass a session of the graph the Module was created in."))
    from hub_adapter.tf1 import writer  # pylint: disable=g-import-not-at-top
    writer.export_module(self, path, session)

  def __repr__(self):
    where = self._spec.module_dir or "created spec"
    return (f"<hub_adapter.Module {self._state.scope!r} from {where} "
            f"tags={format_tags(self._tags)} trainable={self._trainable}>")


def load_module_spec(handle):
  """Alias of :func:`hub_adapter.tf1.spec.load_module_spec`."""
  from hub_adapter.tf1 import spec as spec_lib  # pylint: disable=g-import-not-at-top
  return spec_lib.load_module_spec(handle)


__all__ = ["Module", "ModuleSpec", "load_module_spec", "require_graph_mode"]
