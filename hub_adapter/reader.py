"""The folder reader: what a model folder holds, from its protos, nothing run.

:func:`inspect_folder` looks at ``tfhub_module.pb``, ``saved_model.pb`` (or
``saved_model.pbtxt``), ``variables/variables.index`` and ``assets/`` and
returns a :class:`~hub_adapter.model_info.ModelInfo`: the format, tag sets,
signatures with their input and output specs, whether a TF2 root object has
``__call__`` (and takes ``training``), the variables and their sizes, assets
and attached messages. No graph is imported or run, so it is safe on models
you do not trust yet, and cheap enough to run before every load.

The parsed ``saved_model.pb`` and ``variables.index`` travel with the
``ModelInfo`` (``info.saved_model``, ``info.bundle_index``); they are also
kept by file stamp (path, size, mtime, inode) for the readers that only have
a path (:func:`read_saved_model`, :func:`read_bundle_index`).
``tfhub_module.pb`` is validated by the one ``ModuleDef`` validator,
:func:`hub_adapter.tf1.hub_protos.parse_module_def`.

The top-level ``inspect(handle)`` and the report (``describe``, ``to_json``)
are in :mod:`hub_adapter.inspection`.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import threading
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

from hub_adapter import errors
from hub_adapter import proto_readers
from hub_adapter.folders import check_folder_exists
from hub_adapter.folders import listing as _listing
from hub_adapter.model_info import (ModelInfo, SignatureInfo, TensorInfo,
                                    VariableInfo)
from hub_adapter.support import Format
from hub_adapter.tf1 import hub_protos

MODULE_DEF_FILE = hub_protos.MODULE_DEF_FILENAME
SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
VARIABLES_DIR = hub_protos.VARIABLES_DIR
VARIABLES_PREFIX = os.path.join(VARIABLES_DIR, hub_protos.VARIABLES_PREFIX)
"""A SavedModel's checkpoint prefix, relative to its folder."""
VARIABLES_INDEX = VARIABLES_PREFIX + ".index"
ASSETS_DIR = "assets"
ATTACHMENT_COLLECTION = hub_protos.ATTACHMENT_COLLECTION

SUPPORTED_MODULE_FORMAT = hub_protos.FORMAT_V3
"""``ModuleDef.FORMAT_V3``, the only TF1 Hub format version that exists."""

SUPPORTED_REQUIRED_FEATURES: FrozenSet[str] = hub_protos.SUPPORTED_FEATURES
"""Module features we can honour; tensorflow_hub 0.15 knows none either."""

_CACHE_SIZE = 16  # parsed files: saved_model.pb and variables.index
_cache: "collections.OrderedDict[str, Tuple[Tuple[int, int, int], Any]]" = (
    collections.OrderedDict())
_cache_lock = threading.Lock()


def _format_error(what: str, why: str, fix: str, *, handle: Optional[str],
                  path: str, file: Optional[str] = None
                  ) -> errors.ModelFormatError:
  return errors.ModelFormatError(
      errors.compose(what, why, fix, {"handle": handle, "folder": path,
                                      "file": file}),
      handle=handle, path=path, file=file)


def _read_bytes(path: str, file: str, handle: Optional[str]) -> bytes:
  try:
    with open(os.path.join(path, file), "rb") as f:
      return f.read()
  except OSError as e:
    raise _format_error(
        f"Cannot read {file} of model {handle or path!r}.",
        f"{type(e).__name__}: {e.strerror or e}",
        "Check the file's permissions, or fetch the model again (delete "
        "its cache entry).", handle=handle, path=path, file=file) from e


def _stamp(file_path: str) -> Tuple[int, int, int]:
  st = os.stat(file_path)
  return st.st_mtime_ns, st.st_size, st.st_ino


def read_saved_model(path: str, handle: Optional[str] = None):
  """Returns the parsed ``SavedModel`` proto of a folder, parsed at most once.

  The proto is cached per (file path, mtime, size, inode); callers must not
  modify it (copy it first).

  Args:
    path: The model folder.
    handle: The handle it came from, for error messages.

  Returns:
    A ``tensorflow.core.protobuf.saved_model_pb2.SavedModel``.

  Raises:
    ModelFormatError: neither saved_model.pb nor saved_model.pbtxt exists,
      or the file is truncated, garbled or holds no meta graph.
  """
  pb = os.path.join(path, SAVED_MODEL_PB)
  pbtxt = os.path.join(path, SAVED_MODEL_PBTXT)
  file = SAVED_MODEL_PB if os.path.isfile(pb) else (
      SAVED_MODEL_PBTXT if os.path.isfile(pbtxt) else None)
  if file is None:
    raise _format_error(
        f"{handle or path!r} is not a model folder: it has neither "
        f"{SAVED_MODEL_PB} nor {SAVED_MODEL_PBTXT}.",
        f"Found: {_listing(path)}.",
        "Point the handle at the folder that holds saved_model.pb (for an "
        "archive, the folder it extracts to); TF1 Hub modules also have "
        "tfhub_module.pb next to it.", handle=handle, path=path)
  return _parsed_once(path, file, handle,
                      lambda: _parse_saved_model(path, file, handle))


def _parsed_once(path: str, file: str, handle: Optional[str],
                 parse: Callable[[], Any]) -> Any:
  """Returns ``parse()`` for a file, reused while the file is unchanged.

  Keyed by (real path, mtime, size, inode), so ``load()`` parses each proto
  once however many steps (inspect, integrity checks) read it.
  """
  full = os.path.join(path, file)
  key = os.path.realpath(full)
  try:
    stamp = _stamp(full)
  except OSError as e:
    raise _format_error(f"Cannot read {file} of model {handle or path!r}.",
                        str(e), "Check the file's permissions.",
                        handle=handle, path=path, file=file) from e
  with _cache_lock:
    hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
      _cache.move_to_end(key)
      return hit[1]
  value = parse()
  with _cache_lock:
    _cache[key] = (stamp, value)
    _cache.move_to_end(key)
    while len(_cache) > _CACHE_SIZE:
      _cache.popitem(last=False)
  return value


def _parse_saved_model(path: str, file: str, handle: Optional[str]):
  saved_model_pb2 = proto_readers.tf_proto_module(
      "tensorflow.core.protobuf.saved_model_pb2")  # Without TF's import.
  data = _read_bytes(path, file, handle)
  proto = saved_model_pb2.SavedModel()
  try:
    if file == SAVED_MODEL_PB:
      proto.ParseFromString(data)
    else:
      from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
      text_format.Parse(data.decode("utf-8"), proto)
  except Exception as e:  # pylint: disable=broad-except
    # DecodeError, ParseError, UnicodeDecodeError, RecursionError, ...: every
    # way a garbled file can fail to parse means the same thing to a user.
    raise _format_error(
        f"{file} of model {handle or path!r} is corrupt: it does not parse "
        "as a SavedModel proto.",
        f"{type(e).__name__}: {e} ({len(data)} bytes; a truncated download "
        "or a damaged copy looks like this).",
        "Fetch the model again (delete its cache entry first) or re-export "
        "it.", handle=handle, path=path, file=file) from e
  if not proto.meta_graphs:
    raise _format_error(
        f"{file} of model {handle or path!r} holds no meta graph.",
        f"The file parsed but is empty or garbled ({len(data)} bytes), so it "
        "has no graph, tag set or signature.",
        "Fetch the model again (delete its cache entry first) or re-export "
        "it.", handle=handle, path=path, file=file)
  return proto


def read_module_def(path: str, handle: Optional[str] = None
                    ) -> Tuple[int, Tuple[str, ...]]:
  """Reads and validates ``tfhub_module.pb``.

  Args:
    path: The model folder.
    handle: The handle it came from, for error messages.

  Returns:
    (format version, required features).

  Raises:
    ModelFormatError: the file is garbled, its version is not 3, or it
      requires features this library does not know.
  """
  data = _read_bytes(path, MODULE_DEF_FILE, handle)
  module_def = hub_protos.parse_module_def(
      data, source=f"{MODULE_DEF_FILE} of {handle or path!r}", handle=handle,
      path=path, file=MODULE_DEF_FILE)
  version, features = module_def.format, tuple(module_def.required_features)
  return version, features


# -- proto to ModelInfo -----------------------------------------------------

def dtype_name(enum_value: int) -> str:
  """``DataType`` enum -> ``"float32"``; reference types map to their base."""
  return proto_readers.dtype_name(enum_value)  # As tf.dtypes, without TF.


def _shape(shape_proto) -> Optional[Tuple[Optional[int], ...]]:
  if shape_proto.unknown_rank:
    return None
  return tuple(d.size if d.size >= 0 else None for d in shape_proto.dim)


def _composite_spec(type_spec) -> Tuple[Optional[int], Any]:
  """Finds the (dtype, shape) a composite TypeSpecProto records."""
  dtype, shape = None, None
  stack = [type_spec.type_state]
  while stack and (dtype is None or shape is None):
    value = stack.pop(0)
    kind = value.WhichOneof("kind")
    if kind == "tensor_dtype_value" and dtype is None:
      dtype = value.tensor_dtype_value
    elif kind == "tensor_shape_value" and shape is None:
      shape = value.tensor_shape_value
    elif kind in ("tuple_value", "list_value"):
      stack.extend(getattr(value, kind).values)
  return dtype, shape


def _ragged_state(type_spec) -> Tuple[Optional[int], Optional[int]]:
  """(ragged_rank, row_splits dtype enum) of a RaggedTensorSpec proto."""
  state = type_spec.type_state
  if state.WhichOneof("kind") != "tuple_value":
    return None, None
  values = state.tuple_value.values
  rank = (values[2].int64_value if len(values) > 2
          and values[2].WhichOneof("kind") == "int64_value" else None)
  splits = (values[3].tensor_dtype_value if len(values) > 3
            and values[3].WhichOneof("kind") == "tensor_dtype_value"
            else None)
  return rank, splits


def _tensor_info(name: str, proto) -> TensorInfo:
  encoding = proto.WhichOneof("encoding")
  dtype, shape = proto.dtype, proto.tensor_shape
  composite = encoding in ("coo_sparse", "composite_tensor")
  kind = "sparse" if encoding == "coo_sparse" else "dense"
  ragged_rank = splits = None
  if encoding == "composite_tensor":
    type_spec = proto.composite_tensor.type_spec
    spec_dtype, spec_shape = _composite_spec(type_spec)
    if not dtype and spec_dtype is not None:
      dtype = spec_dtype
    if spec_shape is not None and not proto.HasField("tensor_shape"):
      shape = spec_shape
    try:
      enum_name = type(type_spec).TypeSpecClass.Name(
          type_spec.type_spec_class)
    except ValueError:
      enum_name = ""
    kind = {"RaggedTensorSpec": "ragged", "RAGGED_TENSOR_SPEC": "ragged",
            "SparseTensorSpec": "sparse", "SPARSE_TENSOR_SPEC": "sparse"}.get(
                type_spec.type_spec_class_name or enum_name, "composite")
    if kind == "ragged":
      ragged_rank, splits = _ragged_state(type_spec)
  return TensorInfo(name=name, dtype=dtype_name(dtype), shape=_shape(shape),
                    is_composite=composite, kind=kind,
                    ragged_rank=ragged_rank,
                    row_splits_dtype=(None if splits is None
                                      else dtype_name(splits)))


def _is_internal_signature(key: str) -> bool:
  # __saved_model_init_op / __saved_model_train_op are plumbing, not APIs.
  return key.startswith("__saved_model")


def _signatures(meta_graph) -> Dict[str, SignatureInfo]:
  result = {}
  for key in sorted(meta_graph.signature_def):
    if _is_internal_signature(key):
      continue
    sig = meta_graph.signature_def[key]
    result[key] = SignatureInfo(
        name=key,
        inputs={k: _tensor_info(k, sig.inputs[k]) for k in sorted(sig.inputs)},
        outputs={k: _tensor_info(k, sig.outputs[k])
                 for k in sorted(sig.outputs)})
  return result


def _attachments(meta_graph, path: str, handle: Optional[str]
                 ) -> Dict[str, bytes]:
  if ATTACHMENT_COLLECTION not in meta_graph.collection_def:
    return {}
  collection = meta_graph.collection_def[ATTACHMENT_COLLECTION]
  result = {}
  for raw in collection.bytes_list.value:
    try:
      key, value = proto_readers.parse_module_attachment(raw)
    except proto_readers.ProtoError as e:
      raise _format_error(
          f"An attached message of TF1 Hub module {handle or path!r} is "
          "corrupt.", f"{e}.", "Fetch the module again.", handle=handle,
          path=path, file=SAVED_MODEL_PB) from e
    result[key] = value
  return result


def _structured_strings(value) -> List[str]:
  kind = value.WhichOneof("kind")
  if kind in ("list_value", "tuple_value"):
    return [v.string_value for v in getattr(value, kind).values
            if v.WhichOneof("kind") == "string_value"]
  return []


def _accepts_training(object_graph, function_node) -> Optional[bool]:
  """Whether a saved function takes a ``training`` argument."""
  fn = function_node.function
  spec = fn.function_spec
  if spec.HasField("fullargspec"):
    fields = {p.key: p.value for p in spec.fullargspec.named_tuple_value.values}
    names = (_structured_strings(fields["args"]) if "args" in fields else [])
    names += (_structured_strings(fields["kwonlyargs"])
              if "kwonlyargs" in fields else [])
    if "training" in names:
      return True
    varkw = fields.get("varkw")
    if varkw is not None and varkw.WhichOneof("kind") == "string_value":
      return None  # **kwargs: it might.
    return False
  # No spec recorded: look at how the traces were called.
  for name in fn.concrete_functions:
    if name not in object_graph.concrete_functions:
      continue
    sig = object_graph.concrete_functions[name].canonicalized_input_signature
    if sig.WhichOneof("kind") != "tuple_value":
      continue
    parts = sig.tuple_value.values
    if len(parts) == 2 and parts[1].WhichOneof("kind") == "dict_value":
      if "training" in parts[1].dict_value.fields:
        return True
  return None


def _root_call(saved_model) -> Tuple[bool, Optional[bool]]:
  for meta_graph in saved_model.meta_graphs:
    graph = meta_graph.object_graph_def
    if not graph.nodes:
      continue
    for child in graph.nodes[0].children:
      if child.local_name != "__call__":
        continue
      if not 0 <= child.node_id < len(graph.nodes):
        return True, None
      node = graph.nodes[child.node_id]
      if node.WhichOneof("kind") != "function":
        return True, None
      return True, _accepts_training(graph, node)
    return False, None
  return False, None


def _escape(local_name: str) -> str:
  # How TF checkpoints spell a path element: "." doubles, "/" becomes ".S".
  return local_name.replace(".", "..").replace("/", ".S")


def _checkpoint_keys(graph) -> Dict[int, str]:
  """Node id -> checkpoint key prefix, from a breadth-first walk from root."""
  paths = {0: ""}
  queue = collections.deque([0])
  while queue:
    node_id = queue.popleft()
    for child in graph.nodes[node_id].children:
      if child.node_id in paths or not 0 <= child.node_id < len(graph.nodes):
        continue
      prefix = paths[node_id]
      paths[child.node_id] = (prefix + "/" if prefix else "") + _escape(
          child.local_name)
      queue.append(child.node_id)
  return paths


def _numel(shape: Tuple[int, ...]) -> int:
  total = 1
  for d in shape:
    total *= max(d, 0)
  return total


def _fixed_size(dtype: str) -> Optional[int]:
  return proto_readers.dtype_size(dtype)  # As tf.dtypes, without TF.


def _bundle_index(path: str, handle: Optional[str]
                  ) -> Optional[proto_readers.BundleIndex]:
  if not os.path.isfile(os.path.join(path, VARIABLES_INDEX)):
    return None
  return _parsed_once(path, VARIABLES_INDEX, handle,
                      lambda: _parse_bundle_index(path, handle))


def _parse_bundle_index(path: str, handle: Optional[str]
                        ) -> proto_readers.BundleIndex:
  data = _read_bytes(path, VARIABLES_INDEX, handle)
  try:
    return proto_readers.parse_bundle_index(data)
  except proto_readers.ProtoError as e:
    raise _format_error(
        f"{VARIABLES_INDEX} of model {handle or path!r} is corrupt.",
        f"It is not a readable checkpoint index: {e} ({len(data)} bytes).",
        "Fetch the model again (delete its cache entry first) or re-export "
        "it.", handle=handle, path=path, file=VARIABLES_INDEX) from e


def read_bundle_index(path: str, handle: Optional[str] = None
                      ) -> Optional[proto_readers.BundleIndex]:
  """The parsed ``variables/variables.index``, or None when absent.

  Raises:
    ModelFormatError: the index is truncated or garbled.
  """
  return _bundle_index(path, handle)


def _tf1_variables(saved_model, index, tags) -> Tuple[VariableInfo, ...]:
  variable_pb2 = proto_readers.tf_proto_module(
      "tensorflow.core.framework.variable_pb2")
  trainable = set()
  for meta_graph in saved_model.meta_graphs:
    if frozenset(meta_graph.meta_info_def.tags) != tags:
      continue
    collection = meta_graph.collection_def.get("trainable_variables")
    for raw in (collection.bytes_list.value if collection else ()):
      var = variable_pb2.VariableDef()
      try:
        var.ParseFromString(raw)
      except Exception:  # pylint: disable=broad-except
        continue
      full = var.save_slice_info_def.full_name
      trainable.add(full or var.variable_name.split(":")[0])
  result = []
  for entry in (index.entries if index else ()):
    dtype = dtype_name(entry.dtype)
    shape = tuple(entry.shape or ())
    size = entry.size
    if entry.sliced:
      item = _fixed_size(dtype)
      size = _numel(shape) * item if item else 0
    result.append(VariableInfo(entry.key, dtype, shape, size,
                               trainable=entry.key in trainable))
  return tuple(result)


def _tf2_variables(saved_model, index) -> Tuple[VariableInfo, ...]:
  graph = saved_model.meta_graphs[0].object_graph_def
  if not graph.nodes:
    return ()
  sizes = {e.key: e.size for e in (index.entries if index else ())}
  keys = _checkpoint_keys(graph)
  root = graph.nodes[0]
  listed = [c.node_id for c in root.children if c.local_name == "variables"]
  candidates: List[int] = []
  if listed and 0 <= listed[0] < len(graph.nodes):
    candidates = [c.node_id for c in graph.nodes[listed[0]].children]
  if not candidates:
    skip = {c.node_id for c in root.children if c.local_name == "save_counter"}
    candidates = [i for i, n in enumerate(graph.nodes)
                  if n.WhichOneof("kind") == "variable" and i not in skip]
  result, seen = [], set()
  for node_id in candidates:
    if node_id in seen or not 0 <= node_id < len(graph.nodes):
      continue
    seen.add(node_id)
    node = graph.nodes[node_id]
    if node.WhichOneof("kind") != "variable":
      continue
    var = node.variable
    dtype = dtype_name(var.dtype)
    shape = tuple(max(d.size, 0) for d in var.shape.dim)
    key = keys.get(node_id, "") + "/.ATTRIBUTES/VARIABLE_VALUE"
    size = sizes.get(key)
    if size is None:
      item = _fixed_size(dtype)
      size = _numel(shape) * item if item else 0
    result.append(VariableInfo(var.name + ":0", dtype, shape, size,
                               trainable=bool(var.trainable)))
  return tuple(result)


def _assets(path: str) -> Tuple[str, ...]:
  root = os.path.join(path, ASSETS_DIR)
  found = []
  for folder, _, files in os.walk(root):
    for name in files:
      found.append(os.path.relpath(os.path.join(folder, name), root))
  return tuple(sorted(p.replace(os.sep, "/") for p in found))


def inspect_folder(path: str, *, handle: Optional[str] = None) -> ModelInfo:
  """Reads a model folder's protos into a :class:`ModelInfo`.

  Nothing is imported into a graph or run. The TF1 Hub format is recognised
  by ``tfhub_module.pb``; any other folder with ``saved_model.pb`` (or
  ``.pbtxt``) is a TF2 SavedModel. ``flagged_ops`` is left None (see
  :func:`inspect`, which scans).

  Args:
    path: A local model folder.
    handle: The handle the folder came from, quoted in error messages.

  Returns:
    The :class:`ModelInfo`.

  Raises:
    HandleError: the folder does not exist, is a file, or is empty.
    ModelFormatError: the folder is not a model (no saved_model.pb), or
      ``saved_model.pb``, ``tfhub_module.pb`` or ``variables.index`` is
      corrupt, or the TF1 Hub format version/features are unknown.
  """
  path = os.fspath(path)
  check_folder_exists(path, handle)
  is_tf1 = os.path.isfile(os.path.join(path, MODULE_DEF_FILE))
  version, features = (read_module_def(path, handle) if is_tf1
                       else (None, ()))
  saved_model = read_saved_model(path, handle)
  try:
    return _build_info(path, handle, saved_model, is_tf1, version, features)
  except errors.HubAdapterError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    # A proto that parses can still be nonsense (bad enums, dangling ids);
    # whatever trips us up, the user sees a format error, not our stack.
    raise _format_error(
        f"Model {handle or path!r} has inconsistent metadata.",
        f"{type(e).__name__}: {e}",
        "Fetch the model again (delete its cache entry first) or re-export "
        "it.", handle=handle, path=path, file=SAVED_MODEL_PB) from e


def _build_info(path, handle, saved_model, is_tf1, version, features
                ) -> ModelInfo:
  tag_sets, signatures, attachments = [], {}, {}
  for meta_graph in saved_model.meta_graphs:
    tags = frozenset(meta_graph.meta_info_def.tags)
    if tags in signatures:
      continue  # A repeated tag set: the first one wins, as in TF.
    tag_sets.append(tags)
    signatures[tags] = _signatures(meta_graph)
    if is_tf1:
      attached = _attachments(meta_graph, path, handle)
      if attached:
        attachments[tags] = attached
  index = _bundle_index(path, handle)
  info = ModelInfo(path=path,
                   format=Format.TF1_HUB if is_tf1 else Format.TF2_SAVED_MODEL,
                   module_format_version=version,
                   required_features=tuple(features),
                   tag_sets=tuple(tag_sets), signatures=signatures,
                   assets=_assets(path), attachments=attachments,
                   saved_model=saved_model, bundle_index=index)
  keys = sorted({k for per_tags in attachments.values() for k in per_tags})
  if is_tf1:
    variables = _tf1_variables(saved_model, index, info.default_tags)
    return dataclasses.replace(info, variables=variables,
                               attached_messages=tuple(keys))
  has_call, training = _root_call(saved_model)
  attachments = _converted_attachments(path, handle, info.assets)
  keys = sorted({k for per_tags in attachments.values() for k in per_tags})
  return dataclasses.replace(info, has_call=has_call,
                             call_accepts_training=training,
                             variables=_tf2_variables(saved_model, index),
                             attachments=attachments,
                             attached_messages=tuple(keys))


CONVERTED_ATTACHMENTS_ASSET = "hub_module_attachments.pb"
"""The asset in which ``hub_adapter.convert`` keeps a TF1 Hub module's
attached messages (see ``hub_adapter.conversion``)."""


def _converted_attachments(path: str, handle: Optional[str],
                           assets: Tuple[str, ...]
                           ) -> Dict[FrozenSet[str], Dict[str, bytes]]:
  """Attached messages a converted TF1 Hub module carries as an asset."""
  if CONVERTED_ATTACHMENTS_ASSET not in assets:
    return {}
  saved_model_pb2 = proto_readers.tf_proto_module(
      "tensorflow.core.protobuf.saved_model_pb2")
  file = os.path.join(ASSETS_DIR, CONVERTED_ATTACHMENTS_ASSET)
  data = _read_bytes(path, file, handle)
  holder = saved_model_pb2.SavedModel()
  try:
    holder.ParseFromString(data)
  except Exception as e:  # pylint: disable=broad-except
    raise _format_error(
        f"The attached messages of converted model {handle or path!r} are "
        "corrupt.", f"{file} does not parse: {type(e).__name__}: {e}.",
        "Convert the TF1 Hub module again.", handle=handle, path=path,
        file=file) from e
  result = {}
  for meta_graph in holder.meta_graphs:
    attached = _attachments(meta_graph, path, handle)
    if attached:
      result[frozenset(meta_graph.meta_info_def.tags)] = attached
  return result


__all__ = ["inspect_folder", "read_saved_model", "read_module_def",
           "read_bundle_index", "check_folder_exists", "dtype_name",
           "CONVERTED_ATTACHMENTS_ASSET"]
