"""Module specs: what a TF1 Hub module holds, before it is instantiated.

A TF1 Hub module is a folder with ``tfhub_module.pb`` (a ``ModuleDef``), a
``saved_model.pb`` whose meta graphs are the module's graph variants (one per
tag set, each with its own signatures and collections), a ``variables/``
checkpoint shared by every variant, and ``assets/``. A :class:`ModuleSpec`
describes that content without touching any TensorFlow graph: tag sets,
signatures with their input and output types, and attached messages. A
:class:`hub_adapter.tf1.module.Module` instantiates a spec in the current
graph.

:class:`NativeModuleSpec` is the one implementation. It keeps the
``SavedModel`` proto as it is stored on disk (asset constants named in each
meta graph's ``saved_model_assets`` collection) and only decides where asset
files live when a Module is built, from :attr:`NativeModuleSpec.module_dir`
or :attr:`NativeModuleSpec.asset_sources`; that is why a module folder may
be moved or renamed between loading the spec and using it.

The API mirrors ``tensorflow_hub`` 0.15's ``ModuleSpec`` so code moves over
by changing one import.
"""
from __future__ import annotations

import abc
import os
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional

from hub_adapter import errors
from hub_adapter import runtime
from hub_adapter import signatures
from hub_adapter.tf1 import hub_protos

# The format's names live in hub_protos; these aliases keep older callers.
SAVED_MODEL_FILENAME = hub_protos.SAVED_MODEL_FILENAME
VARIABLES_DIR = hub_protos.VARIABLES_DIR
VARIABLES_PREFIX = hub_protos.VARIABLES_PREFIX
ASSETS_DIR = hub_protos.ASSETS_DIR
ASSETS_KEY = hub_protos.ASSETS_KEY
ASSET_FILEPATHS = hub_protos.ASSET_FILEPATHS
SUPPORTED_COLLECTIONS = hub_protos.STORED_COLLECTIONS
DEFAULT_SIGNATURE = hub_protos.DEFAULT_SIGNATURE


def format_tags(tags: Iterable[str]) -> str:
  """Formats a graph variant's tag set: ``{'train'}``, or ``{}`` when empty.

  Args:
    tags: A tag set.

  Returns:
    :func:`hub_adapter.signatures.format_tags`'s text, in the TF1 style.
  """
  return signatures.format_tags(tags, empty="{}")


def tags_key(tags: Optional[Iterable[str]]) -> FrozenSet[str]:
  """Returns the frozenset naming a graph variant (None means no tags)."""
  if isinstance(tags, str):
    return frozenset([tags])
  return frozenset(tags or ())


class TensorInfo:
  """What a signature says about one input or output, tensor-like.

  It answers the questions code asks of a ``tf.Tensor``: :attr:`dtype` and
  :meth:`get_shape`, plus :attr:`is_sparse`, :attr:`is_composite` and
  :attr:`type_spec`, as ``tensorflow_hub``'s ``ParsedTensorInfo`` does.

  Attributes:
    type_spec: The ``tf.TypeSpec`` (``TensorSpec``, ``SparseTensorSpec`` or a
      composite spec).
  """

  def __init__(self, type_spec):
    self._type_spec = type_spec

  @property
  def type_spec(self):
    return self._type_spec

  @property
  def dtype(self):
    """The ``tf.DType`` of the elements."""
    return self._type_spec.dtype

  @property
  def shape(self):
    """The (dense) ``tf.TensorShape``."""
    return self._type_spec.shape

  def get_shape(self):
    """The (dense) ``tf.TensorShape``."""
    return self._type_spec.shape

  @property
  def is_sparse(self) -> bool:
    return isinstance(self._type_spec, runtime.tf().SparseTensorSpec)

  @property
  def is_composite(self) -> bool:
    return not isinstance(self._type_spec, runtime.tf().TensorSpec)

  @property
  def is_supported_type(self) -> bool:
    tf = runtime.tf()
    return issubclass(self._type_spec.value_type,
                      (tf.Tensor, tf.SparseTensor, tf.RaggedTensor))

  def __eq__(self, other):
    if not isinstance(other, TensorInfo):
      return NotImplemented
    return self._type_spec == other._type_spec

  def __hash__(self):
    return hash(self._type_spec)

  def __repr__(self):
    if self.is_composite and not self.is_sparse:
      return f"<hub_adapter.TensorInfo type_spec={self._type_spec}>"
    return (f"<hub_adapter.TensorInfo shape={self.get_shape()} "
            f"dtype={self.dtype.name} is_sparse={self.is_sparse}>")


def parse_tensor_info(proto) -> TensorInfo:
  """Returns a :class:`TensorInfo` for a ``TensorInfo`` proto.

  Raises:
    ModelFormatError: the proto uses an encoding this reader does not know.
  """
  tf = runtime.tf()
  encoding = proto.WhichOneof("encoding")
  if encoding == "name":
    return TensorInfo(tf.TensorSpec(tf.TensorShape(proto.tensor_shape),
                                    tf.dtypes.as_dtype(proto.dtype)))
  if encoding == "coo_sparse":
    return TensorInfo(tf.SparseTensorSpec(tf.TensorShape(proto.tensor_shape),
                                          tf.dtypes.as_dtype(proto.dtype)))
  if encoding == "composite_tensor":
    from tensorflow.core.protobuf import struct_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
    from tensorflow.python.saved_model import nested_structure_coder  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
    value = struct_pb2.StructuredValue()
    value.type_spec_value.CopyFrom(proto.composite_tensor.type_spec)
    return TensorInfo(nested_structure_coder.decode_proto(value))
  raise errors.ModelFormatError(errors.compose(
      f"A signature tensor uses the unknown TensorInfo encoding {encoding!r}.",
      "Known encodings: 'name' (dense), 'coo_sparse', 'composite_tensor'.",
      "Re-export the module with a current tensorflow_hub."))


def parse_tensor_info_map(protomap) -> Dict[str, TensorInfo]:
  """Converts a ``map<string, TensorInfo>`` proto field into a dict."""
  return {key: parse_tensor_info(value) for key, value in protomap.items()}


class ModuleSpec(abc.ABC):
  """The blueprint of a TF1 Hub module, before it is put into a graph.

  A spec answers what a module offers without building anything: its graph
  variants (tag sets), each variant's signatures and their inputs and
  outputs, and the messages attached by the publisher. ``Module(spec)``
  instantiates it in the current graph, once per Module object.

  Get one with :func:`load_module_spec` (from a folder or handle) or
  ``create_module_spec`` (from a function that builds the graph). Do not
  instantiate this class directly.
  """

  @abc.abstractmethod
  def get_tags(self) -> List[set]:
    """Returns the graph variants, one set of tags each."""

  @abc.abstractmethod
  def get_signature_names(self, tags=None) -> List[str]:
    """Returns the signature names of one graph variant.

    Args:
      tags: The variant's tags; None means the empty set.

    Raises:
      SignatureError: no variant has these tags (also a ``KeyError``).
    """

  @abc.abstractmethod
  def get_input_info_dict(self, signature=None, tags=None
                          ) -> Dict[str, TensorInfo]:
    """Describes the inputs of a signature.

    Args:
      signature: The signature name; None means ``"default"``.
      tags: The graph variant; None means the empty set.

    Returns:
      A dict from input name to a tensor-like :class:`TensorInfo` with
      ``dtype``, ``get_shape()``, ``is_sparse``, ``is_composite`` and
      ``type_spec``.

    Raises:
      SignatureError: no such signature or graph variant.
    """

  @abc.abstractmethod
  def get_output_info_dict(self, signature=None, tags=None
                           ) -> Dict[str, TensorInfo]:
    """Describes the outputs of a signature; see :meth:`get_input_info_dict`."""

  @abc.abstractmethod
  def _get_attached_bytes(self, key: str, tags) -> Optional[bytes]:
    """Returns the serialized message attached under ``key``, or None."""

  def get_attached_message(self, key: str, message_type, tags=None,
                           required: bool = False):
    """Returns the message attached under ``key``, parsed, or None.

    Module publishers attach small protocol messages (for example an
    ``ImageModuleInfo`` under ``"image_module_info"``) to each graph variant
    when creating a module.

    Args:
      key: The attachment key.
      message_type: The protocol message class to parse the bytes into.
      tags: The graph variant to read from; None means the empty set.
      required: Raise instead of returning None when nothing is attached.

    Returns:
      A new ``message_type`` instance, or None.

    Raises:
      AttachmentNotFoundError: ``required`` and nothing is attached under
        ``key`` (also a ``KeyError``, as tensorflow_hub raised).
      SignatureError: no graph variant has these tags.
    """
    data = self._get_attached_bytes(key, tags)
    if data is None:
      if required:
        raise errors.AttachmentNotFoundError(errors.compose(
            f"No message is attached under the key {key!r} to the graph "
            f"variant {format_tags(tags_key(tags))} of {self._describe()}.",
            "The publisher did not call attach_message with this key for "
            "this graph variant.",
            "Call get_attached_message(..., required=False) to get None "
            "instead, or use one of the attached keys: "
            f"{errors.choices(self._attached_keys(tags))}."),
            key=key, tags=sorted(tags_key(tags)))
      return None
    return hub_protos.parse_message(message_type, data)

  def _attached_keys(self, tags) -> List[str]:
    return []

  def _describe(self) -> str:
    return "the module"

  def export(self, path, _sentinel=None, checkpoint_path=None,
             name_transform_fn=None):
    """Exports this spec with variable values read from a checkpoint.

    Args:
      path: The folder to write the module to.
      _sentinel: Keeps the other arguments keyword-only.
      checkpoint_path: The checkpoint holding the variables' values
        (mandatory, by name).
      name_transform_fn: Maps a module variable name to its name in the
        checkpoint, e.g. ``lambda name: "scope/" + name``.

    Raises:
      ArgumentError: ``checkpoint_path`` is missing or given positionally
        (a ``ValueError``, as tensorflow_hub raises).
    """
    if _sentinel is not None:
      raise errors.ArgumentError(
          "ModuleSpec.export takes checkpoint_path and name_transform_fn by "
          "name only; received a second positional argument.")
    if not checkpoint_path:
      raise errors.ArgumentError(
          "ModuleSpec.export needs checkpoint_path=... (the checkpoint that "
          "holds the module's variable values); received none.")
    from hub_adapter.tf1 import writer  # pylint: disable=g-import-not-at-top
    if name_transform_fn is None:
      writer.export_spec(self, path, checkpoint_path)
    else:
      writer.export_spec(self, path, checkpoint_path,
                         name_transform_fn=name_transform_fn)


class NativeModuleSpec(ModuleSpec):
  """A spec backed by a ``SavedModel`` proto, as the TF1 Hub format stores it.

  Args:
    saved_model: A ``saved_model_pb2.SavedModel`` with one ``MetaGraphDef``
      per graph variant (signature_defs, collections incl.
      ``hub_module_attachments``). Asset constants may be given either as
      stored on disk (listed in the ``saved_model_assets`` collection, file
      names relative to ``assets/``) or, for a freshly created spec, as
      constants in ``asset_filepaths`` that hold absolute paths.
    module_dir: The folder the spec was read from; None for a created spec.
    checkpoint_prefix: The variables checkpoint prefix
      (``module_dir/variables/variables``); None for a created spec, whose
      Modules then initialize variables with their own initializers.
    asset_sources: For a created spec: asset file name -> absolute path of
      the file to use (and to copy on export).

  Raises:
    ModelFormatError: the proto has no graph, two graphs with one tag set,
      or collections the TF1 Hub format does not allow.
  """

  def __init__(self, saved_model, *, module_dir: Optional[str] = None,
               checkpoint_prefix: Optional[str] = None,
               asset_sources: Optional[Mapping[str, str]] = None):
    self._saved_model = saved_model
    self._module_dir = module_dir
    self._checkpoint_prefix = checkpoint_prefix
    self._asset_sources = dict(asset_sources or {})
    self._meta_graphs = {}
    self._attachments = {}
    for meta_graph in saved_model.meta_graphs:
      key = tags_key(meta_graph.meta_info_def.tags)
      if key in self._meta_graphs:
        raise errors.ModelFormatError(errors.compose(
            f"{self._describe()} has two graph variants with the tags "
            f"{format_tags(key)}.",
            "Each tag set may name one graph only.",
            "Re-export the module.", {"folder": module_dir}))
      unknown = sorted(
          set(meta_graph.collection_def) - hub_protos.STORED_COLLECTIONS)
      if unknown:
        raise errors.ModelFormatError(errors.compose(
            f"The graph variant {format_tags(key)} of {self._describe()} has "
            f"collections the TF1 Hub format does not support: "
            f"{errors.choices(unknown)}.",
            f"Supported: {errors.choices(hub_protos.STORED_COLLECTIONS)}.",
            "Drop them when creating the module "
            "(create_module_spec(..., drop_collections=[...])).",
            {"folder": module_dir}))
      self._meta_graphs[key] = meta_graph
      self._attachments[key] = _read_attachments(meta_graph,
                                                 self._describe())
    if not self._meta_graphs:
      raise errors.ModelFormatError(errors.compose(
          f"{self._describe()} has no graph.",
          "saved_model.pb of a TF1 Hub module holds one meta graph per tag "
          "set; this one holds none.", "Re-export the module.",
          {"folder": module_dir}))

  # Contract attributes -----------------------------------------------------
  @property
  def saved_model(self):
    """The ``SavedModel`` proto (treat as read-only)."""
    return self._saved_model

  @property
  def module_dir(self) -> Optional[str]:
    return self._module_dir

  @property
  def checkpoint_prefix(self) -> Optional[str]:
    return self._checkpoint_prefix

  @property
  def asset_sources(self) -> Dict[str, str]:
    return dict(self._asset_sources)

  # ModuleSpec API ----------------------------------------------------------
  def get_tags(self) -> List[set]:
    return [set(key) for key in self._meta_graphs]

  def get_signature_names(self, tags=None) -> List[str]:
    return list(self.get_meta_graph(tags).signature_def.keys())

  def get_input_info_dict(self, signature=None, tags=None):
    return parse_tensor_info_map(
        self.get_signature_def(signature, tags).inputs)

  def get_output_info_dict(self, signature=None, tags=None):
    return parse_tensor_info_map(
        self.get_signature_def(signature, tags).outputs)

  def _get_attached_bytes(self, key, tags):
    self.get_meta_graph(tags)  # Raises for an unknown tag set.
    return self._attachments[tags_key(tags)].get(key)

  def _attached_keys(self, tags) -> List[str]:
    return sorted(self._attachments.get(tags_key(tags), {}))

  # Helpers for Module and the writer ---------------------------------------
  def has_tags(self, tags) -> bool:
    return tags_key(tags) in self._meta_graphs

  def get_meta_graph(self, tags=None):
    """Returns the ``MetaGraphDef`` of a graph variant (not a copy).

    Raises:
      TagSetError: no variant has these tags (a SignatureError and KeyError).
    """
    key = tags_key(tags)
    meta_graph = self._meta_graphs.get(key)
    if meta_graph is None:
      raise errors.TagSetError(errors.compose(
          f"{self._describe()} has no graph variant with the tags "
          f"{format_tags(key)}.",
          "A TF1 Hub module offers one graph per tag set.",
          "Pass tags= one of: "
          + ", ".join(format_tags(k) for k in self._meta_graphs) + ".",
          {"folder": self._module_dir}),
          tags=sorted(key),
          available=[sorted(k) for k in self._meta_graphs])
    return meta_graph

  def get_signature_def(self, signature=None, tags=None):
    """Returns the ``SignatureDef`` of a signature in a graph variant.

    Raises:
      SignatureError: no such signature or tag set.
    """
    name = signature or hub_protos.DEFAULT_SIGNATURE
    meta_graph = self.get_meta_graph(tags)
    if name not in meta_graph.signature_def:
      names = list(meta_graph.signature_def)
      raise errors.SignatureError(errors.compose(
          f"{self._describe()} has no signature {name!r} in the graph "
          f"variant {format_tags(tags_key(tags))}.",
          f"Its signatures are {errors.choices(names)}.",
          "Pass signature= one of them"
          + (f" (e.g. signature={sorted(names)[0]!r})." if names else "."),
          {"folder": self._module_dir}),
          signature=name, available=sorted(names))
    return meta_graph.signature_def[name]

  def asset_path(self, filename: str) -> str:
    """Returns where the asset file ``filename`` is to be read from.

    Raises:
      ModelFormatError: the name points outside ``assets/``, or the spec has
        neither a folder nor a source for it.
    """
    if filename in self._asset_sources:
      return self._asset_sources[filename]
    if self._module_dir is None:
      raise errors.ModelFormatError(errors.compose(
          f"The asset {filename!r} of {self._describe()} has no source file.",
          "A spec not read from a folder must name its assets' sources.",
          "Pass asset_sources={name: path} to NativeModuleSpec."))
    assets_dir = os.path.abspath(os.path.join(self._module_dir,
                                              hub_protos.ASSETS_DIR))
    path = os.path.abspath(os.path.join(assets_dir, filename))
    if os.path.commonpath([assets_dir, path]) != assets_dir:
      raise errors.ModelFormatError(errors.compose(
          f"The asset file name {filename!r} of {self._describe()} points "
          "outside its assets/ folder.",
          "Asset names are relative to assets/ and may not climb out of it.",
          "Do not use this module; it may be tampered with.",
          {"folder": self._module_dir}))
    return path

  def asset_node_paths(self, tags=None) -> Dict[str, str]:
    """Maps the asset constants of a graph variant to the files to read.

    Returns:
      A dict from node name to path, for the assets listed in the variant's
      ``saved_model_assets`` collection. Asset constants of a created spec
      that already hold absolute paths are not listed.
    """
    tf = runtime.tf()
    from tensorflow.core.protobuf import meta_graph_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
    meta_graph = self.get_meta_graph(tags)
    result = {}
    if hub_protos.ASSETS_KEY not in meta_graph.collection_def:
      return result
    for any_proto in meta_graph.collection_def[
        hub_protos.ASSETS_KEY].any_list.value:
      asset = meta_graph_pb2.AssetFileDef()
      any_proto.Unpack(asset)
      node_name = asset.tensor_info.name.split(":")[0]
      result[node_name] = self.asset_path(tf.compat.as_str(asset.filename))
    return result

  def _describe(self) -> str:
    if self._module_dir:
      return f"The TF1 Hub module at {self._module_dir!r}"
    return "The module spec"

  def __repr__(self):
    return (f"<hub_adapter.NativeModuleSpec dir={self._module_dir!r} "
            f"tags={[sorted(t) for t in self._meta_graphs]}>")


def _read_attachments(meta_graph, source: str) -> Dict[str, bytes]:
  collection = meta_graph.collection_def.get(hub_protos.ATTACHMENT_COLLECTION)
  if collection is None:
    return {}
  if collection.WhichOneof("kind") != "bytes_list":
    raise errors.ModelFormatError(errors.compose(
        f"The attachments of {source} are stored as "
        f"{collection.WhichOneof('kind')}.",
        f"The {hub_protos.ATTACHMENT_COLLECTION} collection must be a "
        "bytes_list of ModuleAttachment protos.", "Re-export the module."))
  return hub_protos.decode_attachments(collection.bytes_list.value,
                                       source=source)


def read_saved_model(module_dir: str):
  """Reads ``saved_model.pb`` of a folder into a ``SavedModel`` proto.

  Raises:
    ModelFormatError: the file is missing or does not parse.
  """
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  path = os.path.join(module_dir, SAVED_MODEL_FILENAME)
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise errors.ModelFormatError(errors.compose(
        f"Cannot read {path}.", f"{type(e).__name__}: {e}.",
        "A TF1 Hub module folder holds saved_model.pb next to "
        "tfhub_module.pb; check the folder or download it again.",
        {"folder": module_dir})) from e
  saved_model = saved_model_pb2.SavedModel()
  try:
    saved_model.ParseFromString(data)
  except Exception as e:  # DecodeError differs between protobuf runtimes.
    raise errors.ModelFormatError(errors.compose(
        f"Cannot parse {path} as a SavedModel proto.", str(e),
        "The file is corrupt; download or export the module again.",
        {"folder": module_dir})) from e
  return saved_model


def read_module_spec(module_dir: str) -> NativeModuleSpec:
  """Reads the spec of a TF1 Hub module folder.

  Args:
    module_dir: A local folder with ``tfhub_module.pb``.

  Returns:
    A :class:`NativeModuleSpec`.

  Raises:
    ModelFormatError: the folder is not a readable TF1 Hub module.
  """
  module_dir = os.path.abspath(os.fspath(module_dir))
  hub_protos.read_module_def(module_dir)
  saved_model = read_saved_model(module_dir)
  # Modules without variables may lack variables/; the prefix is only read
  # when a Module has variables to restore.
  prefix = os.path.join(module_dir, VARIABLES_DIR, VARIABLES_PREFIX)
  return NativeModuleSpec(saved_model, module_dir=module_dir,
                          checkpoint_prefix=prefix)


def resolve_handle(handle: str) -> str:
  """Turns a handle into a local folder (plain folders without a resolver)."""
  handle = os.fspath(handle)
  if os.path.isdir(handle):
    return handle
  try:
    from hub_adapter import handles as resolve_lib  # pylint: disable=g-import-not-at-top
  except ImportError:
    return handle
  return resolve_lib.resolve(handle)


def load_module_spec(handle_or_path) -> NativeModuleSpec:
  """Loads the spec of a TF1 Hub module from a handle or folder.

  Args:
    handle_or_path: A local folder, a ``.tar.gz`` file or URL, or a TF Hub
      handle; it is resolved with :func:`hub_adapter.resolve`.

  Returns:
    A :class:`NativeModuleSpec`.

  Raises:
    HandleError: the handle cannot be resolved.
    ModelFormatError: the folder is not a readable TF1 Hub module (for
      example a TF2 SavedModel, which :func:`hub_adapter.load` reads), or a
      file it needs is missing or corrupt.
    BackendUnavailableError: the module uses ops of a library that is not
      installed (installed ones are imported here).
  """
  # One preflight for every entry point: resolve, read and parse each file
  # once, check the files (hub_adapter.preflight); the parsed SavedModel
  # travels with the ModelInfo.
  from hub_adapter import preflight  # pylint: disable=g-import-not-at-top
  module_dir, info = preflight.open_model(handle_or_path)
  module_dir = os.path.abspath(module_dir)
  if info.format.value != "tf1_hub":
    hub_protos.read_module_def(module_dir)  # Raises: no tfhub_module.pb.
  prefix = os.path.join(module_dir, VARIABLES_DIR, VARIABLES_PREFIX)
  spec = NativeModuleSpec(info.saved_model, module_dir=module_dir,
                          checkpoint_prefix=prefix)
  # Ops of add-on libraries (tensorflow_text, ...) must be registered before
  # the module's graphs are imported: import them, or say what to install.
  from hub_adapter import op_libraries  # pylint: disable=g-import-not-at-top
  op_libraries.ensure_for_saved_model(
      spec.saved_model, handle=os.fspath(handle_or_path),
      path=spec.module_dir, format="tf1_hub", operation="load")
  return spec


def as_module_spec(spec_or_handle: Any) -> ModuleSpec:
  """Returns ``spec_or_handle`` if it is a spec, else loads it.

  Raises:
    InputError: it is neither a ModuleSpec nor a string or path (a
      ValueError, as tensorflow_hub raised).
  """
  if isinstance(spec_or_handle, ModuleSpec):
    return spec_or_handle
  if isinstance(spec_or_handle, (str, os.PathLike)):
    return load_module_spec(spec_or_handle)
  raise errors.InputError(errors.compose(
      "Module(spec) takes a ModuleSpec or a handle string; received "
      f"{type(spec_or_handle).__name__}: {spec_or_handle!r}.",
      fix="Pass hub_adapter.load_module_spec(handle), "
      "hub_adapter.create_module_spec(module_fn), or the handle itself."))
