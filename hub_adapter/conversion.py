"""``hub_adapter.convert``: a TF1 Hub module rewritten as a TF2 SavedModel.

TF2 cannot fine-tune a TF1 Hub module (see the support table): loading it
with ``tf.saved_model.load`` gives frozen signature functions whose
variables are hidden, and the train graph's ``UPDATE_OPS`` and
``REGULARIZATION_LOSSES`` never run. :func:`convert` writes the same model as
a *reusable* TF2 SavedModel, which fine-tunes in TF2 like any other:

- one set of ``tf.Variable`` s, with the values of the module's checkpoint
  (partitioned variables stay partitioned, one variable per part), trainable
  exactly when the module lists them in ``TRAINABLE_VARIABLES``;
- every signature of the inference graph variant (the ``tags`` argument,
  default: the empty tag set) as a TF2 signature with the same input and
  output names, returning a dict of outputs;
- ``__call__(inputs, training=False)`` applying the ``default`` signature
  (else the only one): ``inputs`` is a tensor for a one-input signature, else
  a dict; it returns the ``default`` output, else the dict of outputs. With
  ``training=True`` it applies the same signature of the ``{"train"}`` graph
  variant (``train_tags``) and runs that variant's ``UPDATE_OPS`` that the
  signature's inputs feed (e.g. batch-norm moving statistics), on the same
  variables;
- ``train_signatures``: every signature of the train variant, as
  ``tf.function`` s taking the inputs as keywords and returning the dict;
- ``variables``, ``trainable_variables``, and ``regularization_losses`` (a
  list of zero-argument ``tf.function`` s computing the train variant's
  ``REGULARIZATION_LOSSES``), the attributes ``hub.KerasLayer`` reads;
- lookup tables as TF2 resources that are re-created and initialized when
  the SavedModel is loaded, and vocabulary files as SavedModel assets, so the
  output folder may be moved;
- sparse and ragged signature inputs: ``__call__``, ``signature_functions``
  and ``train_signatures`` take ``tf.SparseTensor`` / ``tf.RaggedTensor``;
  the TF2 ``signatures`` (which take dense tensors only) take their
  components, named as ``tf.saved_model.load`` names them for the module
  (``x_indices``, ``x_values``, ``x_dense_shape``; ``x_component_0``, ...);
- the module's attached messages, in the asset ``hub_module_attachments.pb``
  (read them with :func:`get_attached_message`; ``inspect()`` lists them).

TF 1.x-era modules convert too: reference variables (``VariableV2``) are
rewritten as resource variables (:mod:`hub_adapter.tf1.ref_variables`), and
graph variants with v1 control flow (``dynamic_rnn``, ``tf.cond``) keep it
and get their backward pass built ahead of time with TF1's gradient
machinery (:mod:`hub_adapter.tf1.v1_gradients`; a function loaded from a
SavedModel cannot differentiate v1 control flow itself), attached with
``tf.custom_gradient``.

How: each graph variant is imported into a ``tf.compat.v1.wrap_function``
graph with its variable, table and asset nodes mapped to the shared TF2
objects; each signature is pruned out of it as a concrete function.

The conversion needs TF2 (eager) execution. Called in TF1 compat mode it
runs in a child Python process (same interpreter, TF2 behaviour), so the
caller's graph and session are left alone.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Tuple

from hub_adapter import errors
from hub_adapter import reader
from hub_adapter import runtime
from hub_adapter import signatures as signatures_lib
from hub_adapter.support import Format
from hub_adapter.tf1 import hub_protos
from hub_adapter.tf1 import v1_gradients

IMPORT_SCOPE = "module"
DEFAULT_SIGNATURE = "default"
ATTACHMENTS_COLLECTION = hub_protos.ATTACHMENT_COLLECTION
ATTACHMENTS_ASSET = reader.CONVERTED_ATTACHMENTS_ASSET
"""Asset file of a converted model holding the module's attached messages:
a ``SavedModel`` proto with one meta graph per converted graph variant,
carrying only its tags and the TF1 ``hub_module_attachments`` collection
(what :func:`get_attached_message` and ``inspect()`` read)."""
_VARIABLE_OPS = ("VarHandleOp",)
_TABLE_OPS = ("HashTableV2", "MutableHashTableV2",
              "MutableHashTableOfTensorsV2", "MutableDenseHashTableV2")
# Attributes that tie an op to a device or to another op's placement; both
# are meaningless once the graph is a function of the converted model.
_PLACEMENT_ATTRS = ("_class",)


# -- public API ---------------------------------------------------------------

def convert(handle, export_dir, *, tags=None, train_tags="auto",
            overwrite: bool = False) -> str:
  """Writes a TF1 Hub module as a TF2 SavedModel that fine-tunes in TF2.

  The result loads with ``hub_adapter.load(export_dir, trainable=True)``,
  ``hub_adapter.KerasLayer(export_dir, trainable=True)``, ``hub.load`` and
  ``tf.saved_model.load``; see the module docstring for what it holds.

  The folder is written next to ``export_dir`` under a temporary name and
  renamed into place only when complete.

  Args:
    handle: The TF1 Hub module: a folder, ``.tar.gz`` archive or handle
      (anything :func:`hub_adapter.resolve` accepts).
    export_dir: The folder to write. Must not exist, or be empty, unless
      ``overwrite=True``.
    tags: The graph variant that serves inference (signatures, and
      ``__call__`` with ``training=False``); default: the empty tag set
      (else the only one).
    train_tags: The graph variant that ``training=True`` applies: "auto"
      (``{"train"}`` when the module has it), a tag set, or None to use
      ``tags`` for training too.
    overwrite: True to replace an existing non-empty ``export_dir``.

  Returns:
    ``export_dir`` as an absolute path.

  Raises:
    HandleError: the handle cannot be resolved, ``export_dir`` exists and is
      not empty (without ``overwrite``), is a file, or overlaps the module's
      folder.
    ModelFormatError: the handle is not a TF1 Hub module, a file it needs
      is missing or corrupt, or the module
      cannot be expressed in TF2: a reference variable passed to an op with
      no resource-variable version, or v1 control flow that cannot be
      differentiated ahead of time (the message names the node and op).
    SignatureError: ``tags`` or ``train_tags`` names no graph variant
      (``TagSetError``).
    BackendUnavailableError: the module uses ops of a library that is not
      installed (installed ones, e.g. tensorflow_text, are imported first).
  """
  # pylint: disable=g-import-not-at-top
  from hub_adapter import op_libraries
  from hub_adapter import preflight
  # pylint: enable=g-import-not-at-top
  if isinstance(handle, os.PathLike):
    handle = os.fspath(handle)
  export_dir = os.path.abspath(os.fspath(export_dir))
  path, info = preflight.open_model(handle)
  if info.format is not Format.TF1_HUB:
    raise errors.ModelFormatError(errors.compose(
        f"Cannot convert {handle!r}: it is already a TF2 SavedModel.",
        "hub_adapter.convert turns TF1 Hub modules (folders with "
        "tfhub_module.pb) into TF2 SavedModels.",
        "Load it directly: hub_adapter.load(handle, trainable=True) or "
        "hub_adapter.KerasLayer(handle, trainable=True).",
        {"handle": handle, "folder": path, "format": info.format.value}),
        handle=handle, path=path)
  infer, train = pick_variants(info, tags, train_tags, handle=handle)
  check_destination(export_dir, path, overwrite, handle=handle)
  # Checked here so a missing library fails before any work (and in the
  # parent process, where the user sees it); imported again in the child.
  op_libraries.ensure_op_libraries(info, handle, operation="convert")
  if runtime.tf().executing_eagerly():
    _convert_here(handle, path, export_dir, infer, train, overwrite)
  else:
    _convert_in_child(handle, path, export_dir, infer, train, overwrite)
  return export_dir


def get_attached_message(handle, key: str, message_type, tags=None,
                         required: bool = False):
  """Reads a message attached to a TF1 Hub module or to its conversion.

  ``hub_adapter.convert`` carries the module's attached messages (e.g. an
  ``ImageModuleInfo``) over into the SavedModel's assets, so what
  ``ModuleSpec.get_attached_message`` read from the module can be read from
  the converted model too.

  Args:
    handle: A TF1 Hub module or a model written by :func:`convert`.
    key: The attachment key.
    message_type: The protocol message class to parse into.
    tags: The graph variant; default: the empty tag set (the inference one).
    required: Raise instead of returning None when nothing is attached.

  Returns:
    A ``message_type`` instance, or None.

  Raises:
    AttachmentNotFoundError: ``required`` and nothing is attached.
    HandleError, ModelFormatError: the handle cannot be read.
  """
  from hub_adapter import preflight  # pylint: disable=g-import-not-at-top
  _, info = preflight.open_model(handle, check=False)
  wanted = frozenset(tags or ())
  data = info.attachments.get(wanted, {}).get(key)
  if data is None:
    if required:
      raise errors.AttachmentNotFoundError(errors.compose(
          f"No message is attached under the key {key!r} to the graph "
          f"variant {sorted(wanted)} of {handle!r}.",
          "The module's publisher did not attach one (convert() carries over "
          "exactly what the module had).",
          "Pass required=False to get None, or one of the attached keys: "
          f"{errors.choices(info.attached_messages)}.",
          {"handle": handle, "format": info.format.value}), key=key)
    return None
  message = message_type()
  message.ParseFromString(data)
  return message


def pick_variants(info: Any, tags: Any, train_tags: Any, *,
                  handle: Optional[str] = None
                  ) -> Tuple[FrozenSet[str], FrozenSet[str]]:
  """Returns the (inference, training) tag sets to convert.

  Raises:
    TagSetError: a tag set asked for does not exist.
  """
  infer = signatures_lib.pick_tags(info, signatures_lib.normalize_tags(tags),
                                   handle=handle)
  if isinstance(train_tags, str) and train_tags == "auto":
    train = info.train_tags or infer
  elif train_tags is None:
    train = infer
  else:
    train = signatures_lib.pick_tags(
        info, signatures_lib.normalize_tags(train_tags), handle=handle)
  return infer, train


def check_destination(export_dir: str, source: str, overwrite: bool, *,
                      handle: Optional[str] = None) -> None:
  """Refuses an ``export_dir`` that would lose data or overlap the source.

  Raises:
    HandleError: it is a file, a non-empty folder (without ``overwrite``),
      or overlaps the module's folder.
  """
  source = os.path.realpath(source)
  target = os.path.realpath(export_dir)
  context = {"handle": handle, "module folder": source,
             "export_dir": export_dir}
  if (target == source or target.startswith(source + os.sep)
      or source.startswith(target + os.sep)):
    raise errors.HandleError(errors.compose(
        f"Cannot convert into {export_dir!r}: it overlaps the module's "
        "folder.",
        "The module is read while the SavedModel is written, and replacing "
        "a folder holding it would delete it.",
        "Pass an export_dir outside the module's folder (e.g. a sibling "
        "folder).", context), path=export_dir)
  if os.path.exists(export_dir) and not os.path.isdir(export_dir):
    raise errors.HandleError(errors.compose(
        f"Cannot convert into {export_dir!r}: it is a file.",
        "A SavedModel is a folder.",
        "Pass the path of a new folder, or delete the file.", context),
        path=export_dir)
  if os.path.isdir(export_dir) and os.listdir(export_dir) and not overwrite:
    raise errors.HandleError(errors.compose(
        f"Cannot convert into {export_dir!r}: the folder exists and is not "
        "empty.",
        "convert() never deletes data unless asked to.",
        "Pass overwrite=True (CLI: --overwrite) to replace it, or choose a "
        "new folder.", context), path=export_dir)


# -- where the work runs ------------------------------------------------------

def _convert_here(handle, path, export_dir, infer, train, overwrite) -> None:
  """Builds and saves the TF2 object in this (eager) process."""
  from hub_adapter.tf1 import spec as spec_lib  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf2 import creation  # pylint: disable=g-import-not-at-top
  from hub_adapter import op_libraries  # pylint: disable=g-import-not-at-top
  spec = spec_lib.read_module_spec(path)
  op_libraries.ensure_for_saved_model(
      spec.saved_model, handle=handle, path=path, format=Format.TF1_HUB,
      operation="convert")
  built = Converter(spec, infer, train, handle=handle).build()
  parent = os.path.dirname(export_dir)
  os.makedirs(parent, exist_ok=True)
  temporary = tempfile.mkdtemp(
      prefix=f".{os.path.basename(export_dir)}.converting-", dir=parent)
  try:
    creation.save(built.root, temporary, signatures=built.signatures)
    _install(temporary, export_dir, overwrite, handle)
  finally:
    built.cleanup()
    if os.path.isdir(temporary):
      shutil.rmtree(temporary, ignore_errors=True)


def _install(temporary: str, export_dir: str, overwrite: bool,
             handle: Optional[str]) -> None:
  """Renames the finished folder into place (replacing the old one)."""
  if os.path.isdir(export_dir) and not os.listdir(export_dir):
    os.rmdir(export_dir)
  if not os.path.exists(export_dir):
    os.rename(temporary, export_dir)
    return
  if not overwrite:
    raise errors.HandleError(errors.compose(
        f"Cannot convert into {export_dir!r}: it appeared while the "
        "conversion ran.",
        "convert() never deletes data unless asked to.",
        "Pass overwrite=True (CLI: --overwrite) to replace it, or choose a "
        "new folder.", {"handle": handle}), path=export_dir)
  old = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.old-",
                         dir=os.path.dirname(export_dir))
  os.rmdir(old)
  os.rename(export_dir, old)
  try:
    os.rename(temporary, export_dir)
  except OSError:
    os.rename(old, export_dir)
    raise
  shutil.rmtree(old, ignore_errors=True)


_CHILD_CODE = "from hub_adapter import conversion; conversion._child_main()"


def _convert_in_child(handle, path, export_dir, infer, train,
                      overwrite) -> None:
  """Runs the conversion in a child process with TF2 behaviour."""
  request = {"handle": handle, "path": path, "export_dir": export_dir,
             "tags": sorted(infer), "train_tags": sorted(train),
             "overwrite": bool(overwrite)}
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env["PYTHONPATH"] = os.pathsep.join(
      [package_root] + [p for p in [env.get("PYTHONPATH")] if p])
  done = subprocess.run(
      [sys.executable, "-c", _CHILD_CODE], input=json.dumps(request),
      capture_output=True, text=True, env=env, check=False)
  if done.returncode == 0:
    return
  reply = None
  for line in reversed(done.stdout.splitlines()):
    if line.startswith("{"):
      try:
        reply = json.loads(line)
      except ValueError:
        continue
      break
  if reply is not None:
    cls = getattr(errors, reply.get("type", ""), None)
    if isinstance(cls, type) and issubclass(cls, errors.HubAdapterError):
      raise cls(reply["message"])
  raise errors.HubAdapterError(errors.compose(
      f"Converting {handle!r} failed in the child process that TF1 compat "
      "mode needs.",
      "TF1 compat mode cannot run the conversion itself, so it runs in a "
      "child Python process with TF2 behaviour, which exited with status "
      f"{done.returncode}: {done.stderr.strip()[-2000:]}",
      "Run the conversion in a TF2 process: `hub-adapter convert SRC DST` "
      "on the command line.", {"export_dir": export_dir}))


def _child_main() -> None:
  """Entry point of the child process (request as JSON on stdin)."""
  request = json.loads(sys.stdin.read())
  try:
    _convert_here(request["handle"], request["path"], request["export_dir"],
                  frozenset(request["tags"]),
                  frozenset(request["train_tags"]), request["overwrite"])
  except errors.HubAdapterError as e:
    print(json.dumps({"type": type(e).__name__, "message": str(e)}))
    sys.exit(3)


# -- the conversion -----------------------------------------------------------

class Built:
  """What :class:`Converter` makes: the root object and its signatures."""

  def __init__(self, root: Any, signatures: Dict[str, Any],
               scratch: Optional[List[str]] = None):
    self.root = root
    self.signatures = signatures
    # Temporary folders of files the SavedModel copies (attachments); remove
    # them after saving.
    self.scratch = list(scratch or [])

  def cleanup(self) -> None:
    for folder in self.scratch:
      shutil.rmtree(folder, ignore_errors=True)


class _Variant:
  """One graph variant imported into a wrapped function."""

  def __init__(self, tags, meta_graph, wrapped, tables, gradients=None):
    self.tags = tags
    self.meta_graph = meta_graph
    self.wrapped = wrapped
    self.tables = tables
    # Signature name -> v1_gradients.SignatureGradient (v1 control flow).
    self.gradients = dict(gradients or {})

  def element(self, info):
    """The tensor, SparseTensor or RaggedTensor a ``TensorInfo`` names."""
    return runtime.tf().compat.v1.saved_model.utils.get_tensor_from_tensor_info(
        info, self.wrapped.graph, import_scope=IMPORT_SCOPE)

  def tensor(self, name: str):
    return self.wrapped.graph.get_tensor_by_name(f"{IMPORT_SCOPE}/{name}")

  def operation(self, name: str):
    return self.wrapped.graph.get_operation_by_name(
        f"{IMPORT_SCOPE}/{signatures_lib.node_name(name)}")


class Converter:
  """Builds the TF2 object for a module spec (eager mode only).

  Args:
    spec: The module's ``NativeModuleSpec``.
    infer_tags: The inference graph variant.
    train_tags: The training graph variant (may equal ``infer_tags``).
    handle: The handle, quoted in errors.
  """

  def __init__(self, spec: Any, infer_tags: FrozenSet[str],
               train_tags: FrozenSet[str], handle: Optional[str] = None):
    self._spec = spec
    self._infer_tags = frozenset(infer_tags)
    self._train_tags = frozenset(train_tags)
    self._handle = handle
    self._uid = uuid.uuid4().hex[:12]
    self._variables: Dict[str, Any] = {}
    self._assets: Dict[str, Any] = {}
    self._scratch: List[str] = []

  # -- errors -----------------------------------------------------------------
  def _error(self, what: str, why: str, fix: str, **extra: Any):
    context = {"handle": self._handle, "folder": self._spec.module_dir}
    context.update(extra)
    return errors.ModelFormatError(
        errors.compose(f"Cannot convert {self._handle!r}: {what}", why, fix,
                       context), handle=self._handle)

  # -- build ------------------------------------------------------------------
  def build(self) -> Built:
    """Creates variables, tables and functions; returns the root object."""
    tf = runtime.tf()
    if not tf.executing_eagerly():
      raise errors.HubAdapterError(errors.compose(
          "Converter.build() needs eager execution.",
          "It creates TF2 variables and traces functions.",
          "Call hub_adapter.convert(), which runs in a child process when "
          "TF1 compat mode is active."))
    self._check_variants_agree()
    self._create_variables()
    infer = self._import_variant(self._infer_tags)
    train = (infer if self._train_tags == self._infer_tags
             else self._import_variant(self._train_tags))
    infer_functions = self._signature_functions(infer, with_updates=False)
    train_functions = self._signature_functions(train, with_updates=True)
    losses = self._regularization_losses(train)
    call_name = self._call_signature(infer)
    root = _make_root(
        variables=[self._variables[k] for k in sorted(self._variables)],
        tables=infer.tables + (train.tables if train is not infer else []),
        assets=[self._assets[k] for k in sorted(self._assets)],
        infer=infer_functions, train=train_functions, losses=losses,
        call_name=call_name,
        attachments=self._attachments_asset())
    signatures = {}
    for name, function in infer_functions.items():
      root.signature_functions[name].get_concrete_function(
          **function.input_specs)
      if function.composite:
        # TF2 signatures take dense tensors: the components, named as
        # tf.saved_model.load names them for a TF1 signature.
        signatures[name] = root.flat_signature_functions[
            name].get_concrete_function(**function.flat_input_specs())
      else:
        signatures[name] = root.signature_functions[
            name].get_concrete_function(**function.input_specs)
    for name, function in root.train_signatures.items():
      function.get_concrete_function(**train_functions[name].input_specs)
    for loss in root.regularization_losses:
      loss.get_concrete_function()
    if call_name is not None:
      spec = infer_functions[call_name].call_input_spec()
      root.__call__.get_concrete_function(spec, training=False)
      root.__call__.get_concrete_function(spec, training=True)
    return Built(root, signatures, self._scratch)

  # -- variables --------------------------------------------------------------
  def _variable_defs(self, tags) -> Dict[str, Any]:
    """Variable node name -> ``VariableDef`` of a graph variant."""
    from tensorflow.core.framework import variable_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
    meta_graph = self._spec.get_meta_graph(tags)
    result = {}
    collection = meta_graph.collection_def.get("variables")
    for data in (collection.bytes_list.value if collection else []):
      definition = variable_pb2.VariableDef()
      definition.ParseFromString(data)
      result[signatures_lib.node_name(definition.variable_name)] = definition
    return result

  def _trainable_names(self, tags) -> set:
    from tensorflow.core.framework import variable_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
    meta_graph = self._spec.get_meta_graph(tags)
    collection = meta_graph.collection_def.get("trainable_variables")
    names = set()
    for data in (collection.bytes_list.value if collection else []):
      definition = variable_pb2.VariableDef()
      definition.ParseFromString(data)
      names.add(signatures_lib.node_name(definition.variable_name))
    return names

  def _check_variants_agree(self) -> None:
    if self._train_tags == self._infer_tags:
      return
    from hub_adapter.tf1 import state  # pylint: disable=g-import-not-at-top
    try:
      state.check_variants_agree(self._spec, self._infer_tags,
                                 self._train_tags)
    except errors.ModelFormatError as e:
      raise self._error(
          "its inference and training graph variants declare different "
          "variables, so they cannot share one set of TF2 variables.",
          str(e).splitlines()[1] if len(str(e).splitlines()) > 1 else str(e),
          "Convert one variant only: pass train_tags=None (training=True "
          "then applies the inference graph), or tags= and train_tags= the "
          "same tag set.") from e

  def _create_variables(self) -> None:
    tf = runtime.tf()
    definitions = self._variable_defs(self._infer_tags)
    trainable = self._trainable_names(self._infer_tags)
    if self._train_tags != self._infer_tags:
      trainable |= self._trainable_names(self._train_tags)
    if not definitions:
      return
    reader, stored = self._checkpoint()
    missing = sorted(
        (d.save_slice_info_def.full_name if d.HasField("save_slice_info_def")
         else name) for name, d in definitions.items()
        if (d.save_slice_info_def.full_name
            if d.HasField("save_slice_info_def") else name) not in stored)
    if missing:
      raise self._error(
          "its variables checkpoint lacks variables its graph declares.",
          f"Missing: {errors.choices(missing)}.",
          "Download or export the module again; variables/ is incomplete.")
    for name, definition in sorted(definitions.items()):
      if definition.HasField("save_slice_info_def"):
        info = definition.save_slice_info_def
        full = reader.get_tensor(info.full_name)
        index = tuple(slice(o, o + n) for o, n in zip(info.var_offset,
                                                      info.var_shape))
        value = full[index]
      else:
        value = reader.get_tensor(name)
      self._variables[name] = tf.Variable(
          value, name=name, trainable=name in trainable)

  def _checkpoint(self):
    tf = runtime.tf()
    prefix = self._spec.checkpoint_prefix
    try:
      reader = tf.train.load_checkpoint(prefix)
      return reader, reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
      raise self._error(
          "its variables checkpoint cannot be read.",
          f"{type(e).__name__}: {e}",
          "Download or export the module again; variables/ is incomplete.",
          checkpoint=prefix) from e

  # -- graph variants ---------------------------------------------------------
  def _prepared_graph_def(self, tags):
    """A copy of a variant's graph_def ready to import into a function."""
    from hub_adapter.tf1 import graph_surgery  # pylint: disable=g-import-not-at-top
    from hub_adapter.tf1 import ref_variables  # pylint: disable=g-import-not-at-top
    meta_graph = graph_surgery.copy_meta_graph(
        self._spec.get_meta_graph(tags))
    unknown = graph_surgery.missing_ops(meta_graph)
    if unknown:
      raise self._error(
          f"its graph uses ops this TensorFlow does not know: "
          f"{errors.choices(unknown)}.",
          "Ops from add-on libraries register themselves when their Python "
          "package is imported.",
          "Import the library that defines them (often `import "
          "tensorflow_text`) before converting.")
    for node in meta_graph.graph_def.node:
      node.device = ""
      for attr in _PLACEMENT_ATTRS:
        if attr in node.attr:
          del node.attr[attr]
    try:
      ref_variables.to_resource_variables(meta_graph)
    except ref_variables.RefRewriteError as e:
      raise self._error(
          f"its graph uses a TF1 reference variable in {e.op} node "
          f"{e.node!r}, which has no resource-variable equivalent.",
          f"Reference variables are rewritten as resource variables (TF2 "
          f"functions can only share those), but {e.why}.",
          "Re-export the module with resource variables "
          "(tf.compat.v1.enable_resource_variables() before "
          "create_module_spec), or fine-tune it in TF1 compat mode with "
          "hub_adapter.load(handle, trainable=True).",
          node=e.node, op=e.op) from e
    return meta_graph

  def _asset(self, path: str):
    """One ``tf.saved_model.Asset`` per file, shared by the variants."""
    if path not in self._assets:
      self._assets[path] = runtime.tf().saved_model.Asset(path)
    return self._assets[path]

  def _import_variant(self, tags) -> _Variant:
    tf = runtime.tf()
    meta_graph = self._prepared_graph_def(tags)
    gradients = {}
    if v1_gradients.has_v1_control_flow(meta_graph):
      gradients = self._add_gradients(meta_graph, tags)
    graph_def = meta_graph.graph_def
    nodes = {node.name: node for node in graph_def.node}
    variables = {name: var for name, var in self._variables.items()
                 if name in nodes and nodes[name].op in _VARIABLE_OPS}
    undeclared = sorted(n for n, node in nodes.items()
                        if node.op in _VARIABLE_OPS and n not in variables)
    if undeclared:
      raise self._error(
          f"the graph variant {sorted(tags)} has variables that the "
          f"inference variant does not declare: {errors.choices(undeclared)}.",
          "All variants must share one set of variables.",
          "Pass train_tags=None, or tags= the variant that declares them.")
    assets = {node: self._asset(path)
              for node, path in self._spec.asset_node_paths(tags).items()}
    tables = {}
    for node in graph_def.node:
      if node.op in _TABLE_OPS:
        tables[node.name] = _make_table(node, self._uid)

    def body():
      # Eager values enter the function graph as captures, which
      # tf.saved_model.save maps back to the variables, tables and assets.
      capture = tf.compat.v1.get_default_graph().capture
      input_map = {}
      for name, var in variables.items():
        input_map[f"{name}:0"] = capture(var.handle)
      for name, table in tables.items():
        input_map[f"{name}:0"] = capture(table.resource_handle)
      for name, asset in assets.items():
        input_map[f"{name}:0"] = capture(asset.asset_path)
      tf.graph_util.import_graph_def(graph_def, input_map=input_map,
                                     name=IMPORT_SCOPE)

    wrapped = tf.compat.v1.wrap_function(body, signature=[])
    variant = _Variant(frozenset(tags), meta_graph, wrapped,
                       list(tables.values()), gradients)
    self._initialize_tables(variant, tables)
    return variant

  def _initialize_tables(self, variant: _Variant, tables) -> None:
    collection = variant.meta_graph.collection_def.get("table_initializer")
    names = list(collection.node_list.value) if collection else []
    inputs = {node.name: [signatures_lib.node_name(i) for i in node.input]
              for node in variant.meta_graph.graph_def.node}
    by_table: Dict[str, List[Any]] = {name: [] for name in tables}
    for name in names:
      for owner in (_reachable(signatures_lib.node_name(name), inputs)
                    & set(tables)):
        by_table[owner].append(variant.operation(name))
    for name, table in tables.items():
      ops = by_table[name]
      if not ops:
        continue
      table.set_initializer(variant.wrapped.prune(feeds=[], fetches=ops))
      table.initialize_now()

  # -- v1 control flow ----------------------------------------------------------
  def _add_gradients(self, meta_graph, tags) -> Dict[str, Any]:
    """Builds the backward passes of a variant with v1 control flow."""
    names = [node.name for node in meta_graph.graph_def.node
             if node.op in _VARIABLE_OPS]
    try:
      gradients = v1_gradients.add_gradient_graphs(meta_graph, names)
    except v1_gradients.GradientError as e:
      raise self._error(
          f"the graph variant {sorted(tags)} uses v1 control flow that "
          "cannot be differentiated ahead of time.",
          f"TF2 functions loaded from a SavedModel cannot differentiate v1 "
          f"while loops and conds themselves, so convert() builds their "
          f"gradients with TF1's machinery first, and here {e}.",
          "Fine-tune this module in TF1 compat mode "
          "(hub_adapter.load(handle, trainable=True)), or re-export it with "
          "control flow v2 (tf.compat.v1.enable_control_flow_v2() before "
          "create_module_spec).") from e
    for node in meta_graph.graph_def.node:
      node.device = ""
      for attr in _PLACEMENT_ATTRS:
        if attr in node.attr:
          del node.attr[attr]
    return gradients

  # -- attached messages --------------------------------------------------------
  def _attachments_asset(self):
    """The module's attached messages as an asset file, or None."""
    from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
    holder = saved_model_pb2.SavedModel()
    found = False
    for tags in sorted({self._infer_tags, self._train_tags}, key=sorted):
      source = self._spec.get_meta_graph(tags)
      collection = source.collection_def.get(ATTACHMENTS_COLLECTION)
      meta_graph = holder.meta_graphs.add()
      meta_graph.meta_info_def.tags.extend(sorted(tags))
      if collection is not None and collection.bytes_list.value:
        meta_graph.collection_def[ATTACHMENTS_COLLECTION].CopyFrom(collection)
        found = True
    if not found:
      return None
    folder = tempfile.mkdtemp(prefix="hub_adapter_attachments_")
    self._scratch.append(folder)
    path = os.path.join(folder, ATTACHMENTS_ASSET)
    with open(path, "wb") as f:
      f.write(holder.SerializeToString())
    return runtime.tf().saved_model.Asset(path)

  # -- functions --------------------------------------------------------------
  def _signature_functions(self, variant: _Variant, with_updates: bool
                           ) -> Dict[str, "_SignatureFunction"]:
    """Signature name -> its pruned functions."""
    tf = runtime.tf()
    result = {}
    updates = self._update_ops(variant) if with_updates else []
    for name, signature in sorted(variant.meta_graph.signature_def.items()):
      input_names = sorted(signature.inputs)
      elements = {k: variant.element(signature.inputs[k])
                  for k in input_names}
      feeds = []
      for key in input_names:
        feeds.extend(tf.nest.flatten(elements[key], expand_composites=True))
      fetches = {k: variant.element(v) for k, v in signature.outputs.items()}
      fed = {t.op for t in feeds}
      extra = [op for op in updates if _placeholders(op, fed) <= fed]
      pruned = variant.wrapped.prune(feeds=feeds, fetches=(fetches, extra))
      specs = {k: _input_spec(tf, signature.inputs[k], elements[k], k)
               for k in input_names}
      backward = None
      gradient = variant.gradients.get(name)
      if gradient is not None:
        backward = self._backward(variant, gradient, feeds, input_names)
      result[name] = _SignatureFunction(input_names, specs, pruned, backward)
    return result

  def _backward(self, variant: _Variant, gradient, feeds, input_names
                ) -> "_Backward":
    """Prunes the backward function of a signature (see v1_gradients)."""
    incoming = [variant.tensor(n) for n in gradient.incoming]
    fetches, slots = [], []
    variables, inputs = [], []
    for target in gradient.targets:
      if target.kind == "variable":
        variables.append(self._variables[target.name])
        slot = ("variable", len(variables) - 1)
      else:
        slot = ("input", input_names.index(target.name))
      if target.grad is None:
        continue
      if target.indices is not None:
        fetches.append((variant.tensor(target.grad),
                        variant.tensor(target.indices),
                        variant.tensor(target.dense_shape)))
      else:
        fetches.append((variant.tensor(target.grad),))
      slots.append(slot)
    pruned = variant.wrapped.prune(feeds=feeds + incoming, fetches=fetches)
    return _Backward(pruned, tuple(gradient.outputs), tuple(slots),
                     tuple(variables))

  def _update_ops(self, variant: _Variant) -> List[Any]:
    collection = variant.meta_graph.collection_def.get(hub_protos.UPDATE_OPS)
    if not collection:
      return []
    return [variant.operation(n) for n in collection.node_list.value]

  def _regularization_losses(self, variant: _Variant) -> List[Any]:
    collection = variant.meta_graph.collection_def.get(
        "regularization_losses")
    result = []
    for name in (collection.node_list.value if collection else []):
      tensor = variant.tensor(name if ":" in name else f"{name}:0")
      if _placeholders(tensor.op, set()):
        continue  # Activity regularizers need inputs; TF2 has no slot.
      result.append(variant.wrapped.prune(feeds=[], fetches=tensor))
    return result

  def _call_signature(self, variant: _Variant) -> Optional[str]:
    names = list(variant.meta_graph.signature_def)
    if DEFAULT_SIGNATURE in names:
      return DEFAULT_SIGNATURE
    return names[0] if len(names) == 1 else None


def _reachable(start: str, inputs: Mapping[str, List[str]]) -> set:
  """Node names ``start`` reads, directly or not (by graph_def inputs)."""
  seen, stack = set(), [start]
  while stack:
    current = stack.pop()
    if current in seen:
      continue
    seen.add(current)
    stack.extend(inputs.get(current, ()))
  return seen


def _placeholders(op, fed) -> set:
  """The input ``Placeholder`` ops that ``op`` needs, not looking past
  ``fed`` (captures of TF2 variables, tables and assets do not count)."""
  captured = {t.op for t in op.graph.internal_captures}
  found, seen, stack = set(), set(), [op]
  while stack:
    current = stack.pop()
    if id(current) in seen:
      continue
    seen.add(id(current))
    if current in fed:
      found.add(current)
      continue
    if current.type == "Placeholder" and current not in captured:
      found.add(current)
      continue
    stack.extend(t.op for t in current.inputs)
    stack.extend(current.control_inputs)
  return found


# -- TF2 objects (need TensorFlow; built on first use) -------------------------

def _make_table(node_def, uid: str):
  """A TF2 resource that re-creates one lookup table node on load."""
  tf = runtime.tf()
  node = type(node_def)()
  node.CopyFrom(node_def)
  del node.input[:]
  node.attr["shared_name"].s = (
      f"hub_adapter_convert_{uid}_{node.name}".encode("utf-8"))
  graph_def = tf.compat.v1.GraphDef()
  graph_def.node.add().CopyFrom(node)

  def create():
    return tf.graph_util.import_graph_def(
        graph_def, return_elements=[f"{node.name}:0"], name="table")[0]

  creator = tf.compat.v1.wrap_function(create, signature=[])
  return _table_class()(creator)


_TABLE_CLASS = None


def _table_class():
  global _TABLE_CLASS
  if _TABLE_CLASS is not None:
    return _TABLE_CLASS
  tf = runtime.tf()

  class ImportedTable(tf.saved_model.experimental.TrackableResource):
    """A lookup table of a TF1 graph: created and initialized on load."""

    def __init__(self, creator):
      super().__init__()
      self._creator = creator
      self._initializer = None

    def _create_resource(self):
      return self._creator()

    def set_initializer(self, function):
      self._initializer = function

    def initialize_now(self):
      self._initialize()

    def _initialize(self):
      if self._initializer is not None:
        self._initializer()
      return tf.constant(0)

  _TABLE_CLASS = ImportedTable
  return ImportedTable


def _input_spec(tf, info, element, name: str):
  """The ``tf.TypeSpec`` a signature input is traced with."""
  encoding = info.WhichOneof("encoding")
  shape = tf.TensorShape(info.tensor_shape)
  if encoding == "coo_sparse":
    return tf.SparseTensorSpec(shape, tf.dtypes.as_dtype(info.dtype))
  if encoding == "composite_tensor":
    return tf.type_spec_from_value(element)
  return tf.TensorSpec(shape, tf.dtypes.as_dtype(info.dtype), name=name)


def _flat_names(name: str, spec) -> List[str]:
  """The component names ``tf.saved_model.load`` gives a TF1 signature's
  sparse (``x_indices``, ``x_values``, ``x_dense_shape``) or other
  composite (``x_component_0``, ...) input."""
  tf = runtime.tf()
  if isinstance(spec, tf.SparseTensorSpec):
    return [f"{name}_indices", f"{name}_values", f"{name}_dense_shape"]
  count = len(tf.nest.flatten(spec, expand_composites=True))
  return [f"{name}_component_{i}" for i in range(count)]


class _Backward:
  """The ahead-of-time backward pass of a signature (v1 control flow).

  Attributes:
    function: Pruned function: (flat inputs..., incoming gradients of
      ``outputs``...) -> one tuple per differentiable target, (dense grad,)
      or (values, indices, dense_shape).
    outputs: The float output keys the incoming gradients belong to.
    slots: Per fetched tuple, ("input", input position) or ("variable",
      index into ``variables``).
    variables: The variables that are differentiated, in ``slots`` order.
  """

  def __init__(self, function, outputs, slots, variables):
    self.function = function
    self.outputs = outputs
    self.slots = slots
    self.variables = variables


class _SignatureFunction:
  """A signature of one graph variant, as pruned functions.

  Attributes:
    input_names: The signature's input keys, sorted.
    input_specs: Input key -> ``tf.TypeSpec`` (sparse and ragged inputs keep
      their kind).
    forward: Pruned function: flat input components -> (outputs dict, update
      ops).
    backward: A :class:`_Backward` for variants with v1 control flow, else
      None (TensorFlow differentiates ``forward`` itself).
  """

  def __init__(self, input_names, input_specs, forward, backward):
    self.input_names = list(input_names)
    self.input_specs = dict(input_specs)
    self.forward = forward
    self.backward = backward

  @property
  def composite(self) -> bool:
    tf = runtime.tf()
    return any(not isinstance(s, tf.TensorSpec)
               for s in self.input_specs.values())

  def call_input_spec(self):
    if len(self.input_specs) == 1:
      return next(iter(self.input_specs.values()))
    return dict(self.input_specs)

  def flat_input_specs(self) -> Dict[str, Any]:
    tf = runtime.tf()
    result = {}
    for key in self.input_names:
      spec = self.input_specs[key]
      if isinstance(spec, tf.TensorSpec):
        result[key] = spec
        continue
      parts = tf.nest.flatten(spec, expand_composites=True)
      for flat_name, part in zip(_flat_names(key, spec), parts):
        result[flat_name] = tf.TensorSpec(part.shape, part.dtype,
                                          name=flat_name)
    return result

  def flat_args(self, inputs: Mapping[str, Any]) -> List[Any]:
    tf = runtime.tf()
    args = []
    for key in self.input_names:
      args.extend(tf.nest.flatten(inputs[key], expand_composites=True))
    return args

  def run(self, inputs: Mapping[str, Any]) -> Dict[str, Any]:
    """Applies the signature to ``inputs`` (keyed by input name)."""
    args = self.flat_args(inputs)
    if self.backward is None:
      outputs, _ = self.forward(*args)
      return outputs
    return _run_with_backward(self, args)


def _run_with_backward(function: _SignatureFunction, args: List[Any]
                       ) -> Dict[str, Any]:
  """Calls ``function.forward`` with ``function.backward`` as its gradient.

  The variables the backward pass differentiates are read here and passed
  in as extra arguments (one each), so their gradients reach them through
  these reads (``tf.custom_gradient`` needs no ``variables`` argument).
  """
  tf = runtime.tf()
  backward = function.backward
  reads = [v.read_value() for v in backward.variables]
  count = len(args)
  template = {}

  @tf.custom_gradient
  def forward(*values):
    outputs, _ = function.forward(*values[:count])
    template["outputs"] = outputs
    flat = tf.nest.flatten(outputs, expand_composites=True)
    positions, index = {}, 0
    for key in sorted(outputs):
      positions[key] = index
      index += len(tf.nest.flatten(outputs[key], expand_composites=True))

    def grad(*upstream):
      incoming = []
      for key in backward.outputs:
        value = upstream[positions[key]]
        incoming.append(tf.zeros_like(outputs[key]) if value is None
                        else tf.convert_to_tensor(value))
      results = backward.function(*values[:count], *incoming)
      input_grads = [None] * count
      variable_grads = [None] * len(reads)
      for (kind, index_), result in zip(backward.slots, results):
        if len(result) == 3:
          value = tf.IndexedSlices(result[0], result[1], result[2])
        else:
          value = result[0]
        if kind == "input":
          # The input's components: a dense input has exactly one.
          position = sum(
              len(tf.nest.flatten(function.input_specs[k],
                                  expand_composites=True))
              for k in function.input_names[:index_])
          input_grads[position] = value
        else:
          variable_grads[index_] = value
      return input_grads + variable_grads

    return flat, grad

  flat = forward(*args, *reads)
  return tf.nest.pack_sequence_as(template["outputs"], list(flat),
                                  expand_composites=True)


def _flat_outputs(outputs: Mapping[str, Any]) -> Dict[str, Any]:
  """Dense outputs as they are; a sparse output ``y`` as ``y_indices``,
  ``y_values``, ``y_dense_shape``; another composite as ``y_component_i``."""
  tf = runtime.tf()
  result = {}
  for key, value in outputs.items():
    if isinstance(value, tf.SparseTensor):
      result[f"{key}_indices"] = value.indices
      result[f"{key}_values"] = value.values
      result[f"{key}_dense_shape"] = value.dense_shape
    elif isinstance(value, tf.Tensor):
      result[key] = value
    else:
      for i, part in enumerate(tf.nest.flatten(value, expand_composites=True)):
        result[f"{key}_component_{i}"] = part
  return result


def _make_root(*, variables, tables, assets, infer, train, losses,
               call_name, attachments=None):
  """The object saved as the SavedModel's root."""
  tf = runtime.tf()

  def signature_function(function: _SignatureFunction):
    def run(**inputs):
      return function.run(inputs)
    return tf.function(run, autograph=False)

  def flat_signature_function(function: _SignatureFunction):
    def run(**flat):
      inputs = {}
      for key in function.input_names:
        spec = function.input_specs[key]
        if isinstance(spec, tf.TensorSpec):
          inputs[key] = flat[key]
        else:
          parts = [flat[n] for n in _flat_names(key, spec)]
          inputs[key] = tf.nest.pack_sequence_as(spec, parts,
                                                 expand_composites=True)
      return _flat_outputs(function.run(inputs))
    return tf.function(run, autograph=False)

  class Converted(tf.Module):
    """A converted TF1 Hub module (see hub_adapter.convert)."""
    # Plain attributes, saved with the model, instead of tf.Module's
    # computed properties: hub.KerasLayer and hub_adapter read them.
    variables = ()
    trainable_variables = ()
    non_trainable_variables = ()

    def __init__(self):
      super().__init__(name=None)
      self.variables = list(variables)
      self.trainable_variables = [v for v in variables if v.trainable]
      self.non_trainable_variables = [v for v in variables
                                      if not v.trainable]
      self.tables = list(tables)
      self.assets = list(assets)
      if attachments is not None:
        self.attached_messages_asset = attachments
      self.signature_functions = {
          name: signature_function(item) for name, item in infer.items()}
      self.flat_signature_functions = {
          name: flat_signature_function(item)
          for name, item in infer.items() if item.composite}
      self.train_signatures = {
          name: signature_function(item) for name, item in train.items()}
      self.regularization_losses = [
          tf.function(pruned, input_signature=[], autograph=False)
          for pruned in losses]

  root = Converted()
  if call_name is not None:
    infer_item = infer[call_name]
    train_item = train.get(call_name, infer_item)

    def apply(function: _SignatureFunction, inputs):
      if not isinstance(inputs, Mapping):
        inputs = {function.input_names[0]: inputs}
      outputs = function.run(inputs)
      if DEFAULT_SIGNATURE in outputs:
        return outputs[DEFAULT_SIGNATURE]
      return outputs

    def call(inputs, training=False):
      if training:
        return apply(train_item, inputs)
      return apply(infer_item, inputs)

    root.__call__ = tf.function(call, autograph=False)
  return root
