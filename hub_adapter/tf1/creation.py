"""Creating TF1 Hub modules: ``create_module_spec``, ``add_signature``,
``attach_message``.

These three functions have the names, arguments and semantics of
tensorflow_hub 0.15, so a ``module_fn`` written for ``hub.create_module_spec``
runs unchanged when ``hub`` is ``hub_adapter``:

```python
def module_fn(training):
  images = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3])
  features = ...
  hub_adapter.add_signature(inputs=images, outputs=features)
  hub_adapter.attach_message("image_module_info", info)

spec = hub_adapter.create_module_spec(
    module_fn, tags_and_args=[({"train"}, {"training": True}),
                              (set(), {"training": False})])
```

How a spec is made. ``create_module_spec`` calls ``module_fn`` once per
(tags, keyword arguments) pair, each time in a new, empty ``tf.Graph`` whose
variables default to resource variables. While ``module_fn`` runs, the graph
is registered as *being defined*, which is what lets ``add_signature`` and
``attach_message`` record into it; they refuse to run anywhere else. After
``module_fn`` returns, the collections named in ``drop_collections`` are
cleared, the graph is checked (signatures present, only collections a TF1 Hub
module may carry, asset files readable, state ops not colocated with
computation) and exported to a ``MetaGraphDef`` carrying the tag set, the
signatures and the attached messages.

Assets. A string constant in the ``ASSET_FILEPATHS`` collection (a lookup
table's vocabulary file adds its path there by itself) names a file that the
exported module must carry. The meta graphs of the spec are kept in the form
in which they are written to disk: each such constant holds a placeholder
string and the ``saved_model_assets`` collection maps its tensor to a file
name inside the module's ``assets/`` folder. The spec's ``asset_sources``
remembers where each file name is copied from, so a Module built from the
spec reads the original file, and ``export`` copies it into ``assets/``.

Where it runs. Every graph is built in a ``tf.Graph`` of its own, so
``create_module_spec`` works in an eager TF2 program too, as in
tensorflow_hub 0.15; instantiating and exporting the spec then needs a graph
(``with tf.compat.v1.Graph().as_default():`` around ``Module(spec)`` and
``Module.export``). ``add_signature`` and ``attach_message`` called anywhere
but inside a ``module_fn`` raise: ``UnsupportedOperationError`` from the
support table in TF2 (whose remedy also explains how to make a TF2
SavedModel instead), ``ModelFormatError`` in TF1 compat mode.
"""
from __future__ import annotations

import contextlib
import re
import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from hub_adapter import errors
from hub_adapter import runtime
from hub_adapter import support
from hub_adapter.support import Format, Mode, Operation
from hub_adapter.tf1 import assets
from hub_adapter.tf1 import hub_protos

_ATTACHMENT_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class _GraphDefinition:
  """What ``add_signature``/``attach_message`` recorded for one graph.

  Attributes:
    graph: The ``tf.Graph`` that ``module_fn`` builds.
    tags: The tag set of this graph variant.
    signatures: Signature name -> ``SignatureDef``; a later definition of
      the same name replaces the earlier one.
    attachments: Key -> serialized message; the last message for a key wins.
  """

  def __init__(self, graph, tags: frozenset):
    self.graph = graph
    self.tags = tags
    self.signatures: Dict[str, Any] = {}
    self.attachments: Dict[str, bytes] = {}


_DEFINING = threading.local()


def _definitions() -> List[_GraphDefinition]:
  if not hasattr(_DEFINING, "stack"):
    _DEFINING.stack = []
  return _DEFINING.stack


@contextlib.contextmanager
def _defining(definition: _GraphDefinition):
  stack = _definitions()
  stack.append(definition)
  try:
    yield definition
  finally:
    stack.pop()


def _require_create(detail: str = "") -> None:
  """Raises the support table's error unless TF1 Hub creation works here."""
  support.require(Format.TF1_HUB, Operation.CREATE, runtime.current_mode(),
                  detail=detail)


def _current_definition(caller: str) -> _GraphDefinition:
  """Returns the definition of the graph ``module_fn`` is building now.

  Args:
    caller: The public function asking, for error messages.

  Raises:
    UnsupportedOperationError: in TF2 mode.
    ModelFormatError: in TF1 compat mode outside a ``module_fn``.
  """
  tf = runtime.tf()
  graph = tf.compat.v1.get_default_graph()
  for definition in reversed(_definitions()):
    if definition.graph is graph:
      return definition
  _require_create(detail=f"{caller}() was called in TF2 mode.")
  raise errors.ModelFormatError(errors.compose(
      f"{caller}() was called outside a module_fn.",
      f"{caller}() records into the graph that create_module_spec(module_fn) "
      "is building; the current default graph is not such a graph, so the "
      "call would be lost.",
      f"Call {caller}() from inside the module_fn you pass to "
      "hub_adapter.create_module_spec(module_fn, ...).",
      {"mode": Mode.TF1_COMPAT.value}))


# add_signature ----------------------------------------------------------------

def add_signature(name: Optional[str] = None, inputs: Any = None,
                  outputs: Any = None) -> None:
  """Adds a signature to the module being defined.

  Must be called from inside the ``module_fn`` given to
  :func:`create_module_spec`. Defining the same name twice keeps the later
  definition.

  Args:
    name: The signature's name; None or "" means ``"default"``, the
      signature a Module applies when none is named.
    inputs: A dict from input name to ``tf.Tensor``, ``tf.SparseTensor`` or
      ``tf.RaggedTensor`` of the graph being built (usually placeholders);
      a single tensor means ``{"default": tensor}``. None means no inputs.
    outputs: The same for outputs. A ``tf.Variable`` is not a tensor: pass
      ``tf.identity(variable)``.

  Raises:
    UnsupportedOperationError: in TF2 mode.
    ModelFormatError: outside a ``module_fn``, or when a value is not a
      tensor of the graph being defined, or an input is subject to a
      ``tf.colocate_with`` constraint.
  """
  definition = _current_definition("add_signature")
  tf = runtime.tf()
  name = name or "default"
  inputs = _as_tensor_dict(inputs)
  outputs = _as_tensor_dict(outputs)
  _check_signature_values(definition, name, inputs, outputs)
  _check_input_colocation(name, inputs)
  build = tf.compat.v1.saved_model.utils.build_tensor_info
  definition.signatures[name] = (
      tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
          inputs={k: build(v) for k, v in inputs.items()},
          outputs={k: build(v) for k, v in outputs.items()}))


def _as_tensor_dict(values: Any) -> Dict[str, Any]:
  if values is None:
    return {}
  if isinstance(values, Mapping):
    return dict(values)
  return {"default": values}


def _check_signature_values(definition: _GraphDefinition, name: str,
                            inputs: Mapping[str, Any],
                            outputs: Mapping[str, Any]) -> None:
  tf = runtime.tf()
  kinds = (tf.Tensor, tf.SparseTensor, tf.RaggedTensor)
  problems = []
  for side, values in (("input", inputs), ("output", outputs)):
    for key, value in sorted(values.items()):
      if not isinstance(key, str) or not key:
        problems.append(f"{side} key {key!r} is not a non-empty string")
      elif not isinstance(value, kinds):
        hint = (" (pass tf.identity(variable) for a variable's value)"
                if isinstance(value, tf.Variable) else "")
        problems.append(f"{side} {key!r} is a {type(value).__name__}{hint}")
      elif any(t.graph is not definition.graph
               for t in tf.nest.flatten(value, expand_composites=True)):
        problems.append(f"{side} {key!r} belongs to another graph than the "
                        "one module_fn is building")
  if problems:
    raise errors.ModelFormatError(errors.compose(
        f"add_signature({name!r}) got values a TF1 Hub signature cannot "
        "hold.",
        "Signature inputs and outputs must be tf.Tensor, tf.SparseTensor or "
        "tf.RaggedTensor objects created by module_fn: "
        + "; ".join(problems) + ".",
        "Pass tensors built inside module_fn, keyed by string names.",
        {"signature": name}))


def _check_input_colocation(name: str, inputs: Mapping[str, Any]) -> None:
  """Inputs get remapped when a signature is applied, so an input that is
  colocated with another op could not be rewired consistently."""
  tf = runtime.tf()
  for key, value in sorted(inputs.items()):
    for tensor in tf.nest.flatten(value, expand_composites=True):
      op = tensor.op
      own = [tf.compat.as_bytes("loc:@" + op.name)]
      if op.colocation_groups() != own:
        raise errors.ModelFormatError(errors.compose(
            f"Input {key!r} of signature {name!r} is subject to a "
            "tf.colocate_with constraint.",
            "Applying a signature replaces its inputs by the caller's "
            f"tensors, which cannot honour the constraint "
            f"{[g.decode() for g in op.colocation_groups()]} of op "
            f"{op.name!r}.",
            "Feed the signature from a placeholder (or tf.identity of the "
            "tensor) created outside any tf.colocate_with block.",
            {"signature": name, "input": key}))


# attach_message ---------------------------------------------------------------

def attach_message(key: str, message: Any) -> None:
  """Attaches a protocol message to the module being defined.

  Must be called from inside the ``module_fn`` given to
  :func:`create_module_spec`. Each graph variant stores what its own
  ``module_fn`` call attached; the last message attached under a key wins.
  Consumers read it back with ``ModuleSpec.get_attached_message(key,
  message_type)``.

  Args:
    key: A name of the form of a Python identifier starting with a letter
      (letters, digits and underscores).
    message: A protocol message (anything with ``SerializeToString()``),
      e.g. a ``tf.train.Example`` or ``hub_protos.ImageModuleInfo``.

  Raises:
    UnsupportedOperationError: in TF2 mode.
    ModelFormatError: outside a ``module_fn``, for a malformed key, or when
      ``message`` is not a protocol message.
  """
  definition = _current_definition("attach_message")
  if not isinstance(key, str) or not _ATTACHMENT_KEY.match(key):
    raise errors.ModelFormatError(errors.compose(
        f"attach_message() got the malformed key {key!r}.",
        "Keys must start with a letter and contain only letters, digits and "
        "underscores; other punctuation is reserved by the TF1 Hub format.",
        "Use a key such as 'image_module_info' or 'label_info'.",
        {"key": key}))
  serialize = getattr(message, "SerializeToString", None)
  if not callable(serialize):
    raise errors.ModelFormatError(errors.compose(
        f"attach_message({key!r}, ...) got a {type(message).__name__}, not a "
        "protocol message.",
        "Attached messages are stored serialized, so they must be protocol "
        "buffer messages.",
        "Pass a message object, e.g. a tf.train.Example or an "
        "ImageModuleInfo.", {"key": key}))
  definition.attachments.pop(key, None)
  definition.attachments[key] = serialize()


# create_module_spec -----------------------------------------------------------

def create_module_spec(module_fn, tags_and_args=None, drop_collections=None):
  """Creates a ModuleSpec from a function that builds the module's graph.

  ``module_fn(**kwargs)`` is called once per graph variant, each time in a
  new graph (never the caller's), and defines the signatures with
  :func:`add_signature`. Since nothing runs in the caller's context, this
  works in TF1 compat mode and in an eager TF2 program alike (as in
  tensorflow_hub 0.15); a ``Module`` of the spec then needs a graph.
  Variables created with ``tf.compat.v1.get_variable`` are resource
  variables unless ``module_fn`` asks otherwise.

  Args:
    module_fn: A function that builds the module's graph.
    tags_and_args: A list of ``(tags, kwargs)`` pairs, one per graph variant:
      ``tags`` a set of strings, ``kwargs`` the keyword arguments for
      ``module_fn``. The usual pair for fine-tunable modules is
      ``[({"train"}, {"training": True}), (set(), {"training": False})]``;
      the empty tag set is the one a Module uses by default. None means
      ``[(set(), {})]``.
    drop_collections: Names of graph collections to clear before export,
      e.g. for collections a TF1 Hub module may not carry.

  Returns:
    A ``hub_adapter.tf1.spec.NativeModuleSpec`` with one meta graph per tag
    set; ``module_dir`` and ``checkpoint_prefix`` are None (a Module built
    from it initializes its variables with their initializers) and
    ``asset_sources`` maps asset file names to the files they come from.

  Raises:
    ModelFormatError: for bad ``tags_and_args``, repeated tag sets, a graph
      without signatures, unsupported collections, unreadable asset files,
      or colocation constraints a module cannot honour.
  """
  if not callable(module_fn):
    raise errors.ModelFormatError(errors.compose(
        f"create_module_spec() needs a callable module_fn; got a "
        f"{type(module_fn).__name__}.", "",
        "Pass the function that builds the module's graph."))
  variants, name_tags = _variants(tags_and_args)
  drop = _drop_list(drop_collections)
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved_model = saved_model_pb2.SavedModel()
  for tags, kwargs in variants:
    definition = _build_graph(module_fn, tags, kwargs, drop)
    where = f"the graph for tags {sorted(tags)}" if name_tags else "the graph"
    _check_graph(definition, where)
    saved_model.meta_graphs.add().CopyFrom(_meta_graph(definition))
  asset_sources = assets.assets_to_disk_form(saved_model)
  from hub_adapter.tf1 import spec as spec_lib  # pylint: disable=g-import-not-at-top
  return spec_lib.NativeModuleSpec(saved_model, module_dir=None,
                                   checkpoint_prefix=None,
                                   asset_sources=asset_sources)


def _variants(tags_and_args) -> Tuple[List[Tuple[frozenset, dict]], bool]:
  """Validates ``tags_and_args``; returns the variants and whether the
  caller named tag sets (which error messages then quote)."""
  if not tags_and_args:
    return [(frozenset(), {})], False
  variants = []
  for item in tags_and_args:
    try:
      tags, kwargs = item
    except (TypeError, ValueError):
      raise errors.ModelFormatError(errors.compose(
          f"tags_and_args holds {item!r}, not a (tags, kwargs) pair.", "",
          "Pass a list such as [({'train'}, {'training': True}), "
          "(set(), {'training': False})].")) from None
    if isinstance(tags, (str, bytes)) or not all(
        isinstance(t, str) for t in (tags or ())):
      raise errors.ModelFormatError(errors.compose(
          f"tags_and_args holds the tag set {tags!r}, which is not a set of "
          "strings.",
          "A plain string would be read as a set of single characters.",
          "Write tag sets as Python sets of strings, e.g. {'train'} or "
          "set()."))
    if kwargs is not None and not isinstance(kwargs, Mapping):
      raise errors.ModelFormatError(errors.compose(
          f"tags_and_args gives module_fn the arguments {kwargs!r}, not a "
          "dict of keyword arguments.", "",
          "Pass a dict, e.g. {'training': True}."))
    variants.append((frozenset(tags or ()), dict(kwargs or {})))
  seen = set()
  for tags, _ in variants:
    if tags in seen:
      raise errors.ModelFormatError(errors.compose(
          f"The tag set {sorted(tags)} appears more than once in "
          "tags_and_args.",
          "Each graph variant is found by its tag set, so tag sets must be "
          "unique.", "Give each graph variant its own tag set.",
          {"tag_sets": [sorted(t) for t, _ in variants]}))
    seen.add(tags)
  return variants, True


def _drop_list(drop_collections) -> List[str]:
  if not drop_collections:
    return []
  if isinstance(drop_collections, (str, bytes)):
    return [drop_collections]
  return list(drop_collections)


def _build_graph(module_fn, tags: frozenset, kwargs: dict,
                 drop: Sequence[str]) -> _GraphDefinition:
  tf = runtime.tf()
  graph = tf.Graph()
  definition = _GraphDefinition(graph, tags)
  with graph.as_default(), _defining(definition):
    with tf.compat.v1.variable_scope("", use_resource=True):
      module_fn(**kwargs)
  for key in drop:
    graph.clear_collection(key)
  return definition


def _check_graph(definition: _GraphDefinition, where: str) -> None:
  """Refuses graphs that cannot become a working TF1 Hub module."""
  graph = definition.graph
  if not definition.signatures:
    raise errors.ModelFormatError(errors.compose(
        f"module_fn defined no signature in {where}.",
        "A TF1 Hub module is used only through its signatures.",
        "Call hub_adapter.add_signature(inputs=..., outputs=...) at least "
        "once inside module_fn."))
  unsupported = sorted(
      key for key in graph.get_all_collection_keys()
      if key not in hub_protos.SUPPORTED_COLLECTIONS
      and graph.get_collection(key))
  if unsupported:
    raise errors.ModelFormatError(errors.compose(
        f"module_fn filled collections in {where} that a TF1 Hub module "
        f"cannot carry: {errors.choices(unsupported)}.",
        "A module may only carry these collections: "
        f"{errors.choices(hub_protos.SUPPORTED_COLLECTIONS)}.",
        "Pass create_module_spec(..., drop_collections="
        f"{unsupported!r}) to leave them out (or stop adding to them).",
        {"collections": unsupported}))
  _check_asset_constants(graph, where)
  _check_state_colocation(graph, where)


def _check_asset_constants(graph, where: str) -> None:
  tf = runtime.tf()
  for tensor in graph.get_collection(hub_protos.ASSET_FILEPATHS):
    op = getattr(tensor, "op", None)
    ok = (op is not None and op.type == "Const" and tensor.dtype == tf.string
          and tensor.shape.rank == 0 and tensor.value_index == 0)
    if not ok:
      raise errors.ModelFormatError(errors.compose(
          f"The ASSET_FILEPATHS collection of {where} holds {tensor!r}, "
          "which is not a scalar string constant.",
          "An asset is a file whose path is a tf.constant; on export the "
          "constant is rewritten to point into the module's assets/ folder.",
          "Add only tf.constant(path) tensors to ASSET_FILEPATHS."))
    path = tf.compat.as_str_any(
        tf.make_ndarray(op.get_attr("value")).item())
    if not tf.io.gfile.exists(path):
      raise errors.ModelFormatError(errors.compose(
          f"The asset file {path!r} used in {where} does not exist.",
          "Asset files are copied into the module's assets/ folder when it "
          "is exported, and read when it is applied.",
          "Create the file before calling create_module_spec, or fix the "
          "path given to the lookup table / tf.constant.",
          {"asset": path, "tensor": tensor.name}))


def _check_state_colocation(graph, where: str) -> None:
  """State ops (variables, tables) are shared by every application of a
  module, so they may only be colocated with other state ops."""
  tf = runtime.tf()
  state = {op.name for op in graph.get_operations()
           if op.op_def.is_stateful and not op.op_def.input_arg}
  for op in graph.get_operations():
    if op.name not in state:
      continue
    for group in op.colocation_groups():
      target = tf.compat.as_str_any(group)[len("loc:@"):]
      if target not in state:
        raise errors.ModelFormatError(errors.compose(
            f"The state op {op.name!r} ({op.type}) in {where} is colocated "
            f"with {target!r}, which holds no state.",
            "A module's state is created once and shared by every "
            "application of its signatures, so it cannot follow a "
            "computation op's placement.",
            "Create variables and tables outside tf.colocate_with blocks "
            "that name computation ops."))


def _meta_graph(definition: _GraphDefinition):
  """Exports the graph with its tags, signatures and attachments."""
  tf = runtime.tf()
  # Leaving out attributes that equal their defaults lets older TensorFlow
  # versions import graphs written by newer ones.
  # In the graph's own context: exporting a meta graph is refused while
  # executing eagerly, which is the caller's context in a TF2 program.
  with definition.graph.as_default():
    meta_graph = tf.compat.v1.train.export_meta_graph(
        graph=definition.graph, strip_default_attrs=True)
  meta_graph.meta_info_def.tags.extend(sorted(definition.tags))
  for name, signature in definition.signatures.items():
    meta_graph.signature_def[name].CopyFrom(signature)
  if definition.attachments:
    meta_graph.collection_def[
        hub_protos.ATTACHMENT_COLLECTION].bytes_list.value.extend(
        hub_protos.encode_attachments(definition.attachments))
  return meta_graph


__all__ = ["create_module_spec", "add_signature", "attach_message"]
