"""Reads what a model folder holds from its protos, without running anything.

:func:`inspect_folder` looks at ``tfhub_module.pb``, ``saved_model.pb`` (or
``saved_model.pbtxt``), ``variables/variables.index`` and ``assets/`` and
returns a :class:`~hub_adapter.model_info.ModelInfo`: the format, tag sets,
signatures with their input and output specs, whether a TF2 root object has
``__call__`` (and takes ``training``), the variables and their sizes, assets
and attached messages. No graph is imported or run, so it is safe on models
you do not trust yet, and cheap enough to run before every load.

The parsed ``SavedModel`` proto is kept (keyed by path, size and mtime) so
the loader can reuse it through :func:`read_saved_model` instead of parsing
the file a second time.
"""
from __future__ import annotations

import collections
import dataclasses
import importlib
import os
import threading
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Tuple

from hub_adapter import errors
from hub_adapter import proto_readers
from hub_adapter.model_info import (ModelInfo, SignatureInfo, TensorInfo,
                                    VariableInfo)
from hub_adapter.support import Format

MODULE_DEF_FILE = "tfhub_module.pb"
SAVED_MODEL_PB = "saved_model.pb"
SAVED_MODEL_PBTXT = "saved_model.pbtxt"
VARIABLES_INDEX = os.path.join("variables", "variables.index")
ASSETS_DIR = "assets"
ATTACHMENT_COLLECTION = "hub_module_attachments"

SUPPORTED_MODULE_FORMAT = 3
"""``ModuleDef.FORMAT_V3``, the only TF1 Hub format version that exists."""

SUPPORTED_REQUIRED_FEATURES: FrozenSet[str] = frozenset()
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


def _listing(path: str, limit: int = 12) -> str:
  """Names what a folder holds, for error messages."""
  try:
    names = sorted(os.listdir(path))
  except OSError as e:
    return f"(cannot list: {e.strerror or e})"
  shown = [n + ("/" if os.path.isdir(os.path.join(path, n)) else "")
           for n in names[:limit]]
  more = f" and {len(names) - limit} more" if len(names) > limit else ""
  return (", ".join(shown) + more) if shown else "(nothing)"


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


def check_folder_exists(path: str, handle: Optional[str] = None) -> None:
  """Raises HandleError unless ``path`` is a non-empty folder.

  Args:
    path: The folder.
    handle: The handle it came from, for the message.

  Raises:
    HandleError: the folder does not exist, is a file, or is empty.
  """
  shown = handle if handle is not None else path
  if not os.path.exists(path):
    raise errors.HandleError(errors.compose(
        f"Model folder {shown!r} does not exist.",
        "hub_adapter resolves a handle to a local folder holding "
        "saved_model.pb, and that folder is missing.",
        "Pass an existing model folder, a .tar.gz archive, or a URL; check "
        "the path for typos.", {"handle": handle, "folder": path}),
        handle=handle, path=path)
  if not os.path.isdir(path):
    raise errors.HandleError(errors.compose(
        f"Handle {shown!r} is a file, not a model folder.",
        "A model is a folder holding saved_model.pb (and tfhub_module.pb for "
        "the TF1 Hub format).",
        "Pass the folder, or a .tar.gz/.tgz archive of it (which "
        "hub_adapter.resolve extracts into the cache).",
        {"handle": handle, "path": path}), handle=handle, path=path)
  try:
    empty = not os.listdir(path)
  except OSError as e:
    raise errors.HandleError(errors.compose(
        f"Cannot list model folder {shown!r}.",
        f"{type(e).__name__}: {e.strerror or e}",
        "Check the folder's permissions.", {"handle": handle, "folder": path}),
        handle=handle, path=path) from e
  if empty:
    raise errors.HandleError(errors.compose(
        f"Model folder {shown!r} is empty.",
        "The folder holds no files, so there is no model to load (an "
        "interrupted download or extraction leaves folders like this).",
        "Fetch or extract the model again; for a cached download, delete "
        "the cache entry and retry.", {"handle": handle, "folder": path}),
        handle=handle, path=path)


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
  try:
    version, features = proto_readers.parse_module_def(data)
  except proto_readers.ProtoError as e:
    raise _format_error(
        f"{MODULE_DEF_FILE} of TF1 Hub module {handle or path!r} is corrupt.",
        f"It does not parse as a ModuleDef proto: {e} ({len(data)} bytes).",
        "Fetch the module again (delete its cache entry first).",
        handle=handle, path=path, file=MODULE_DEF_FILE) from e
  if version != SUPPORTED_MODULE_FORMAT:
    raise _format_error(
        f"TF1 Hub module {handle or path!r} has format version {version}, "
        f"which is not supported.",
        f"{MODULE_DEF_FILE} says ModuleDef.format={version}; the only TF1 Hub "
        f"format version that exists (and that tensorflow_hub reads) is "
        f"{SUPPORTED_MODULE_FORMAT}. The file is damaged or from an unknown "
        "future writer.",
        "Fetch the module again, or use a TF2 SavedModel version of it.",
        handle=handle, path=path, file=MODULE_DEF_FILE)
  unknown = sorted(set(features) - SUPPORTED_REQUIRED_FEATURES)
  if unknown:
    raise _format_error(
        f"TF1 Hub module {handle or path!r} requires unknown features "
        f"{errors.choices(unknown)}.",
        "ModuleDef.required_features lists features a reader must implement "
        "to load the module correctly; known features: "
        f"{errors.choices(SUPPORTED_REQUIRED_FEATURES)}.",
        "Use a newer reader that knows these features, or a TF2 SavedModel "
        "version of the module.", handle=handle, path=path,
        file=MODULE_DEF_FILE)
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
                   assets=_assets(path), attachments=attachments)
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


def inspect(handle: str, *, scan: bool = True) -> ModelInfo:
  """Resolves a handle and reads its model folder (see :func:`inspect_folder`).

  Args:
    handle: Any handle :func:`hub_adapter.handles.resolve` accepts.
    scan: Also scan the graphs for ops that touch files, the network or run
      code, filling ``flagged_ops`` (see :mod:`hub_adapter.untrusted`).

  ``op_libraries`` is filled: the add-on libraries (``tensorflow_text``,
  ...) whose ops the model uses, whether each is installed, and ops no
  known library provides (see :mod:`hub_adapter.op_libraries`).

  Returns:
    The :class:`ModelInfo`.

  Raises:
    HandleError: the handle cannot be resolved.
    ModelFormatError: the folder is not a readable model.
  """
  resolve_lib = importlib.import_module("hub_adapter.handles")
  from hub_adapter import untrusted  # pylint: disable=g-import-not-at-top
  path = resolve_lib.resolve(handle)
  info = inspect_folder(path, handle=handle)
  op_libraries = importlib.import_module("hub_adapter.op_libraries")
  info = dataclasses.replace(info, op_libraries=op_libraries.needs(
      read_saved_model(path, handle)))
  if scan:
    info = dataclasses.replace(info, flagged_ops=untrusted.scan(info))
  return info


def _tags_text(tags: FrozenSet[str]) -> str:
  return "{" + ", ".join(sorted(tags)) + "}" if tags else "{} (empty)"


def _shape_text(shape) -> str:
  if shape is None:
    return "<unknown rank>"
  return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def format_bytes(n: float) -> str:
  """``1536`` -> ``"1.5 KiB"``: sizes for people, in describe() and progress
  lines."""
  for unit in ("B", "KiB", "MiB", "GiB"):
    if n < 1024 or unit == "GiB":
      return f"{int(n)} {unit}" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1024
  return str(n)


def describe(info: ModelInfo) -> str:
  """Formats a :class:`ModelInfo` as readable text (``hub-adapter inspect``).

  Args:
    info: What :func:`inspect` returned.

  Returns:
    Multi-line text, without a trailing newline.
  """
  lines = [f"Model: {info.path}",
           f"Format: {info.format.title} ({info.format.value})"]
  if info.format == Format.TF1_HUB:
    lines.append(f"Module format version: {info.module_format_version}; "
                 f"required features: {errors.choices(info.required_features)}")
  lines.append("Tag sets: " + ", ".join(_tags_text(t) for t in info.tag_sets))
  if info.format == Format.TF2_SAVED_MODEL:
    if info.has_call:
      training = {True: "takes `training`", False: "no `training` argument",
                  None: "unknown whether it takes `training`"}[
                      info.call_accepts_training]
      lines.append(f"__call__: yes ({training})")
    else:
      lines.append("__call__: no (use a signature)")
  for tags in info.tag_sets:
    sigs = info.signatures.get(tags, {})
    lines.append(f"Signatures of tag set {_tags_text(tags)}:"
                 + ("" if sigs else " (none)"))
    for name, sig in sigs.items():
      lines.append(f"  {name}:")
      for label, tensors in (("in", sig.inputs), ("out", sig.outputs)):
        for key, t in tensors.items():
          extra = ""
          if t.is_composite:
            extra = f" ({t.kind}" + (
                "" if t.ragged_rank is None
                else f", ragged_rank={t.ragged_rank}") + ")"
          lines.append(f"    {label:3s} {key}: {t.dtype} "
                       f"{_shape_text(t.shape)}{extra}")
  lines.append(f"Variables: {info.variable_count} "
               f"({format_bytes(info.variable_bytes)})")
  for var in info.variables:
    flag = "" if var.trainable is None else (
        " trainable" if var.trainable else " frozen")
    lines.append(f"  {var.name}: {var.dtype} {_shape_text(var.shape)} "
                 f"{format_bytes(var.bytes)}{flag}")
  lines.append("Assets: " + (", ".join(info.assets) if info.assets
                             else "(none)"))
  if info.format == Format.TF1_HUB or info.attached_messages:
    lines.append("Attached messages: " + (", ".join(info.attached_messages)
                                          if info.attached_messages
                                          else "(none)"))
  if info.op_libraries is None:
    lines.append("Op libraries: (not looked up)")
  elif not info.op_libraries:
    lines.append("Op libraries: none needed (every op is TensorFlow's own)")
  else:
    lines.append("Op libraries needed:")
    lines.extend(importlib.import_module(
        "hub_adapter.op_libraries").describe_needs(info.op_libraries))
  if info.flagged_ops is None:
    lines.append("Flagged ops: (not scanned)")
  elif not info.flagged_ops:
    lines.append("Flagged ops: none")
  else:
    lines.append(f"Flagged ops: {len(info.flagged_ops)} (load with care; "
                 "load(..., safe=True) refuses them)")
    for op in info.flagged_ops:
      lines.append(f"  {op.op} {op.node!r} in {op.where}: {op.why}")
  return "\n".join(lines)


def _tensor_json(t: TensorInfo) -> Dict[str, Any]:
  result = {"dtype": t.dtype,
            "shape": None if t.shape is None else list(t.shape),
            "is_composite": t.is_composite}
  if t.is_composite:
    result.update(kind=t.kind, ragged_rank=t.ragged_rank)
  return result


def to_json(info: ModelInfo) -> Dict[str, Any]:
  """A JSON-serialisable dict of a :class:`ModelInfo` (``inspect --json``).

  Tag sets are sorted lists; signatures are given per tag set as
  ``[{"tags": [...], "signatures": {name: {"inputs": ..., "outputs": ...}}}]``
  with each tensor as ``{"dtype", "shape", "is_composite"}`` (null shape =
  unknown rank, null dimension = unknown size). Attachment bytes are left
  out; their keys are in ``attached_messages``.

  Args:
    info: What :func:`inspect` returned.

  Returns:
    The dict.
  """
  return {
      "path": info.path,
      "format": info.format.value,
      "module_format_version": info.module_format_version,
      "required_features": list(info.required_features),
      "tag_sets": [sorted(t) for t in info.tag_sets],
      "signatures": [
          {"tags": sorted(tags),
           "signatures": {
               name: {"inputs": {k: _tensor_json(t)
                                 for k, t in sig.inputs.items()},
                      "outputs": {k: _tensor_json(t)
                                  for k, t in sig.outputs.items()}}
               for name, sig in info.signatures.get(tags, {}).items()}}
          for tags in info.tag_sets],
      "has_call": info.has_call,
      "call_accepts_training": info.call_accepts_training,
      "variables": [{"name": v.name, "dtype": v.dtype, "shape": list(v.shape),
                     "bytes": v.bytes, "trainable": v.trainable}
                    for v in info.variables],
      "variable_count": info.variable_count,
      "variable_bytes": info.variable_bytes,
      "assets": list(info.assets),
      "attached_messages": list(info.attached_messages),
      "op_libraries": None if info.op_libraries is None else [
          {"library": need.library, "pip": need.pip,
           "requirement": need.requirement, "ops": list(need.ops),
           "missing": list(need.missing),
           "installed_version": need.installed_version,
           "importable": need.importable, "loaded": need.loaded}
          for need in info.op_libraries],
      "flagged_ops": None if info.flagged_ops is None else [
          dataclasses.asdict(op) for op in info.flagged_ops],
  }


__all__ = ["inspect_folder", "inspect", "describe", "to_json",
           "read_saved_model", "read_module_def", "read_bundle_index",
           "check_folder_exists", "dtype_name", "format_bytes"]
