"""Cheap checks that a model folder is whole, run before loading it.

TensorFlow meets a damaged model deep inside a load, with a message about
protos, checkpoints or missing files that rarely names the culprit.
:func:`check_folder` looks first and raises a
:class:`~hub_adapter.errors.ModelFormatError` naming the file when:

- ``saved_model.pb`` or ``tfhub_module.pb`` is truncated or garbled (already
  found by :func:`hub_adapter.inspection.inspect_folder`, which produced the
  ``info`` passed in), or ``saved_model.pb`` no longer matches the checksum
  in ``fingerprint.pb`` (written by TF >= 2.12), or that file is garbled;
- ``variables/variables.index`` is missing although the graph has variables,
  or is truncated or garbled (its block checksums are verified);
- a variable data shard ``variables.data-NNNNN-of-MMMMM`` is missing,
  unreadable, or shorter than the index says;
- a variable's bytes do not match the checksum in the index (verified through
  TensorFlow's checkpoint reader when the variables total at most
  ``HUB_ADAPTER_VERIFY_MAX_BYTES``, default 64 MiB; 0 turns this off);
- an asset the graph names is missing from ``assets/``, unreadable, or has a
  name that leaves the folder.

Nothing here runs the model.
"""
from __future__ import annotations

import importlib
import os
import posixpath
from typing import Dict, Iterable, List, Optional, Tuple

from hub_adapter import errors
from hub_adapter import proto_readers
from hub_adapter.model_info import ModelInfo

VERIFY_MAX_BYTES_ENV = "HUB_ADAPTER_VERIFY_MAX_BYTES"
DEFAULT_VERIFY_MAX_BYTES = 64 * 1024 * 1024

VARIABLES_PREFIX = os.path.join("variables", "variables")
FINGERPRINT_FILE = "fingerprint.pb"
_ASSET_COLLECTION = "saved_model_assets"


def _error(what: str, why: str, info: ModelInfo, handle: Optional[str],
           file: str, fix: str = "") -> errors.ModelFormatError:
  return errors.ModelFormatError(
      errors.compose(what, why, fix or (
          "The model folder is damaged (an interrupted download or copy "
          "looks like this): fetch it again, deleting its cache entry first, "
          "or re-export it."),
          {"handle": handle, "folder": info.path, "file": file,
           "format": info.format.value}),
      handle=handle, path=info.path, file=file)


def asset_file_defs(meta_graph) -> List[Tuple[str, str]]:
  """(filename, tensor name) of every asset a meta graph declares.

  Reads ``MetaGraphDef.asset_file_def`` (TF2 and recent TF1 exports) and the
  legacy ``saved_model_assets`` collection (older TF1 exports, e.g. TF1 Hub
  modules).
  """
  from tensorflow.core.protobuf import meta_graph_pb2  # pylint: disable=g-import-not-at-top
  found = [(a.filename, a.tensor_info.name) for a in meta_graph.asset_file_def]
  collection = meta_graph.collection_def.get(_ASSET_COLLECTION)
  if collection is not None:
    for any_proto in collection.any_list.value:
      asset = meta_graph_pb2.AssetFileDef()
      try:
        asset.ParseFromString(any_proto.value)
      except Exception:  # pylint: disable=broad-except
        continue  # Reported by the asset check as an unnamed asset.
      found.append((asset.filename, asset.tensor_info.name))
  return found


def _verify_max_bytes(value: Optional[int]) -> int:
  if value is not None:
    return value
  raw = os.environ.get(VERIFY_MAX_BYTES_ENV, "").strip()
  try:
    return int(raw) if raw else DEFAULT_VERIFY_MAX_BYTES
  except ValueError:
    return DEFAULT_VERIFY_MAX_BYTES


def _graph_has_variables(saved_model) -> bool:
  for meta_graph in saved_model.meta_graphs:
    for name in ("variables", "trainable_variables"):
      coll = meta_graph.collection_def.get(name)
      if coll is not None and (coll.bytes_list.value or coll.node_list.value):
        return True
    if any(node.WhichOneof("kind") == "variable"
           for node in meta_graph.object_graph_def.nodes):
      return True
    if any(node.op in ("VariableV2", "Variable", "VarHandleOp")
           for node in meta_graph.graph_def.node):
      return True
  return False


def _check_shards(info: ModelInfo, handle: Optional[str],
                  index: proto_readers.BundleIndex) -> Dict[str, int]:
  prefix = os.path.join(info.path, VARIABLES_PREFIX)
  needed: Dict[int, int] = {}
  for entry in index.entries + index.slice_entries:
    if entry.size:
      end = entry.offset + entry.size
      needed[entry.shard_id] = max(needed.get(entry.shard_id, 0), end)
  sizes = {}
  for shard in range(index.num_shards):
    path = proto_readers.shard_filename(prefix, shard, index.num_shards)
    rel = os.path.relpath(path, info.path)
    try:
      with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size:
          f.read(1)
    except FileNotFoundError:
      raise _error(f"Variable data file {rel} of model {handle or info.path!r}"
                   " is missing.",
                   f"variables.index says the variables are stored in "
                   f"{index.num_shards} shard file(s) and this one does not "
                   "exist.", info, handle, rel) from None
    except OSError as e:
      raise _error(f"Variable data file {rel} of model {handle or info.path!r}"
                   " cannot be read.", f"{type(e).__name__}: "
                   f"{e.strerror or e}", info, handle, rel,
                   "Check the file's permissions, or fetch the model again."
                   ) from e
    want = needed.get(shard, 0)
    if size < want:
      raise _error(f"Variable data file {rel} of model {handle or info.path!r}"
                   " is truncated.",
                   f"It has {size} bytes but variables.index places data up "
                   f"to byte {want}.", info, handle, rel)
    sizes[rel] = size
  return sizes


def _check_checksums(info: ModelInfo, handle: Optional[str],
                     index: proto_readers.BundleIndex, limit: int) -> None:
  total = sum(e.size for e in index.entries + index.slice_entries)
  if limit <= 0 or total > limit or not index.entries:
    return
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  prefix = os.path.join(info.path, VARIABLES_PREFIX)
  try:
    reader = tf.train.load_checkpoint(prefix)
  except Exception as e:  # pylint: disable=broad-except
    raise _error(f"The variables of model {handle or info.path!r} cannot be "
                 "read.", f"{type(e).__name__}: {e}", info, handle,
                 os.path.join("variables", "variables.index")) from e
  for entry in index.entries:
    try:
      reader.get_tensor(entry.key)
    except Exception as e:  # pylint: disable=broad-except
      # DataLossError (checksum), OutOfRangeError (short file), ... all mean
      # the shard does not hold what the index promises.
      shard = proto_readers.shard_filename(VARIABLES_PREFIX, entry.shard_id,
                                           index.num_shards)
      reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
      raise _error(f"Variable data file {shard} of model "
                   f"{handle or info.path!r} is corrupt.",
                   f"Variable {entry.key!r} does not match its checksum in "
                   f"variables.index ({type(e).__name__}: {reason}).",
                   info, handle, shard) from e


def _check_assets(info: ModelInfo, handle: Optional[str], saved_model
                  ) -> None:
  assets_dir = os.path.join(info.path, "assets")
  for meta_graph in saved_model.meta_graphs:
    for filename, _ in asset_file_defs(meta_graph):
      rel = posixpath.normpath(filename) if filename else ""
      if (not rel or rel.startswith(("/", "../")) or rel == ".." or
          "\\" in filename or "\x00" in filename):
        raise _error(f"Model {handle or info.path!r} declares an asset with "
                     f"an unsafe name {filename!r}.",
                     "Asset names must be relative paths inside assets/; "
                     "this one would make the loader read a file outside the "
                     "model folder.", info, handle, "saved_model.pb",
                     "Do not load this model; it was not written by "
                     "TensorFlow's exporter.")
      path = os.path.join(assets_dir, *rel.split("/"))
      shown = "assets/" + rel
      if not os.path.isfile(path):
        raise _error(f"Asset {shown} of model {handle or info.path!r} is "
                     "missing.",
                     "The graph reads this file (e.g. a vocabulary for a "
                     "lookup table) but it is not in the folder.",
                     info, handle, shown)
      try:
        with open(path, "rb") as f:
          f.read(1)
      except OSError as e:
        raise _error(f"Asset {shown} of model {handle or info.path!r} cannot "
                     "be read.", f"{type(e).__name__}: {e.strerror or e}",
                     info, handle, shown,
                     "Check the file's permissions, or fetch the model "
                     "again.") from e


def _check_fingerprint(info: ModelInfo, handle: Optional[str]) -> None:
  """Compares saved_model.pb with the checksum TF >= 2.12 records in
  fingerprint.pb; catches damage that still parses."""
  path = os.path.join(info.path, FINGERPRINT_FILE)
  if not os.path.isfile(path) or not os.path.isfile(
      os.path.join(info.path, "saved_model.pb")):
    return
  try:
    from tensorflow.core.protobuf import fingerprint_pb2  # pylint: disable=g-import-not-at-top
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting  # pylint: disable=g-import-not-at-top
  except ImportError:
    return
  stored = fingerprint_pb2.FingerprintDef()
  try:
    with open(path, "rb") as f:
      stored.ParseFromString(f.read())
  except Exception as e:  # pylint: disable=broad-except
    raise _error(f"{FINGERPRINT_FILE} of model {handle or info.path!r} is "
                 "corrupt.", f"It does not parse as a FingerprintDef proto "
                 f"({type(e).__name__}: {e}).", info, handle,
                 FINGERPRINT_FILE) from e
  if not stored.saved_model_checksum:
    return
  computed = fingerprint_pb2.FingerprintDef()
  try:
    computed.ParseFromString(fingerprinting.CreateFingerprintDef(info.path))
  except Exception:  # pylint: disable=broad-except
    return  # Cannot recompute here; parsing already vouched for the file.
  if computed.saved_model_checksum != stored.saved_model_checksum:
    raise _error(f"saved_model.pb of model {handle or info.path!r} is "
                 "corrupt.",
                 f"Its checksum ({computed.saved_model_checksum}) differs "
                 f"from the one recorded in {FINGERPRINT_FILE} when it was "
                 f"saved ({stored.saved_model_checksum}): the file was "
                 "damaged after saving, though it still parses.",
                 info, handle, "saved_model.pb",
                 "Fetch the model again (delete its cache entry first) or "
                 "re-export it. If you rewrote saved_model.pb on purpose, "
                 f"delete {FINGERPRINT_FILE}.")


def check_folder(info: ModelInfo, handle: Optional[str] = None, *,
                 verify_max_bytes: Optional[int] = None) -> None:
  """Checks that the files a model needs are present and intact.

  Args:
    info: What ``inspect_folder(path)`` returned for the folder (its parsing
      already checked saved_model.pb, tfhub_module.pb and variables.index).
    handle: The handle, quoted in errors.
    verify_max_bytes: Verify variable checksums when the variables total at
      most this many bytes (default: env ``HUB_ADAPTER_VERIFY_MAX_BYTES`` or
      64 MiB; 0 never).

  Raises:
    ModelFormatError: a file is missing, truncated, unreadable or corrupt;
      the message names it.
  """
  inspect_lib = importlib.import_module("hub_adapter.inspection")
  saved_model = inspect_lib.read_saved_model(info.path, handle)
  _check_fingerprint(info, handle)
  index = inspect_lib.read_bundle_index(info.path, handle)
  index_rel = os.path.join("variables", "variables.index")
  if index is None:
    data_files = _listdir(os.path.join(info.path, "variables"))
    if any(n.startswith("variables.data-") for n in data_files) or \
        _graph_has_variables(saved_model):
      raise _error(f"{index_rel} of model {handle or info.path!r} is "
                   "missing.",
                   "The model has variables, and TensorFlow finds their "
                   "values through this index; without it nothing can be "
                   "restored.", info, handle, index_rel)
  else:
    _check_shards(info, handle, index)
    _check_checksums(info, handle, index, _verify_max_bytes(verify_max_bytes))
  _check_assets(info, handle, saved_model)


def _listdir(path: str) -> Iterable[str]:
  try:
    return os.listdir(path)
  except OSError:
    return ()


__all__ = ["check_folder", "asset_file_defs", "VERIFY_MAX_BYTES_ENV"]
