"""Cheap checks that a model folder is whole, run before loading it.

TensorFlow meets a damaged model deep inside a load, with a message about
protos, checkpoints or missing files that rarely names the culprit.
:func:`check_folder` looks first and raises a
:class:`~hub_adapter.errors.ModelFormatError` naming the file when:

- ``saved_model.pb`` or ``tfhub_module.pb`` is truncated or garbled (already
  found by :func:`hub_adapter.reader.inspect_folder`, which produced the
  ``info`` passed in), or ``saved_model.pb`` no longer matches the checksum
  in ``fingerprint.pb`` (written by TF >= 2.12), or that file is garbled;
- ``variables/variables.index`` is missing although the graph has variables,
  or is truncated or garbled (its block checksums are verified);
- a variable data shard ``variables.data-NNNNN-of-MMMMM`` is missing,
  unreadable, or shorter than the index says;
- a variable's bytes do not match the CRC32C in the index (computed with
  ``google-crc32c`` when the variables total at most
  ``HUB_ADAPTER_VERIFY_MAX_BYTES``, default 64 MiB; 0 turns this off);
- an asset the graph names is missing from ``assets/``, unreadable, or has a
  name that leaves the folder.

Nothing here runs the model.

Why the checksum pre-check stays although TensorFlow's restore verifies the
CRC32C of every tensor it reads: in TF1 compat mode (``hub.Module``, a
SavedModel in a graph) the restore runs in the caller's own
``Session.run(initializer)``, long after ``load()`` returned, where
TensorFlow's ``DataLossError`` names neither the file nor the variable and
cannot be turned into a clear error; and in TF2 the pre-check fails before
anything is built and names the variable. It costs 0.2-0.5 ms per MiB of
variables from the page cache (a read and a hardware CRC32C: 13 ms for 56 MiB
against 37 ms for the TensorFlow checkpoint reader it replaced, and about
0.3 s per MiB in pure Python), next to ~180 ms for TensorFlow to load the
same model. Above the bound TensorFlow's own verification is the check, and
:func:`restore_error` turns its failure into the same error. What is
hand-written: which bytes a tensor's CRC32C covers (the raw buffer; for
strings the lengths, their masked checksum and the bytes, as TensorFlow's
``tensor_bundle.cc`` writes them); variant tensors are left to TensorFlow.
"""
from __future__ import annotations

import os
import posixpath
import re
import struct
import sys
from typing import Dict, Iterable, List, Optional, Tuple

from absl import logging

from hub_adapter import errors
from hub_adapter import reader
from hub_adapter import proto_readers
from hub_adapter.model_info import ModelInfo
from hub_adapter.tf1 import hub_protos

VERIFY_MAX_BYTES_ENV = "HUB_ADAPTER_VERIFY_MAX_BYTES"
DEFAULT_VERIFY_MAX_BYTES = 64 * 1024 * 1024

VARIABLES_PREFIX = reader.VARIABLES_PREFIX
FINGERPRINT_FILE = "fingerprint.pb"
_ASSET_COLLECTION = "saved_model_assets"


def _error(what: str, why: str, info: Optional[ModelInfo],
           handle: Optional[str], file: str, fix: str = "", *,
           path: Optional[str] = None) -> errors.ModelFormatError:
  path = info.path if info is not None else path
  return errors.ModelFormatError(
      errors.compose(what, why, fix or (
          "The model folder is damaged (an interrupted download or copy "
          "looks like this): fetch it again, deleting its cache entry first, "
          "or re-export it."),
          {"handle": handle, "folder": path, "file": file,
           "format": info.format.value if info is not None else None}),
      handle=handle, path=path, file=file)


def asset_file_defs(meta_graph) -> List[Tuple[str, str]]:
  """(filename, tensor name) of every asset a meta graph declares.

  Reads ``MetaGraphDef.asset_file_def`` (TF2 and recent TF1 exports) and the
  legacy ``saved_model_assets`` collection (older TF1 exports, e.g. TF1 Hub
  modules).
  """
  meta_graph_pb2 = proto_readers.tf_proto_module(
      "tensorflow.core.protobuf.meta_graph_pb2")
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
    for name in (hub_protos.GLOBAL_VARIABLES,
                 hub_protos.TRAINABLE_VARIABLES):
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


# DataType values whose tensors are not stored as their raw buffer: string,
# resource, variant, and their reference types (+100).
_STRING_TYPES = (7, 107)
_RAW_EXCEPTIONS = frozenset({7, 20, 21, 107, 120, 121})
_UINT32_MAX = 0xFFFFFFFF


class _TruncatedLengths(Exception):
  """A string tensor's stored lengths end early (never leaves this module:
  such a tensor cannot match its checksum)."""


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
  result = shift = 0
  while True:
    if pos >= len(data) or shift > 63:
      raise _TruncatedLengths()
    byte = data[pos]
    pos += 1
    result |= (byte & 0x7F) << shift
    if not byte & 0x80:
      return result, pos
    shift += 7


def _string_crc(data: bytes, count: int) -> int:
  """The CRC32C TensorFlow records for a string tensor's stored bytes.

  The shard holds ``[varint64 length]*count``, the masked CRC32C of the
  lengths (4 bytes), then the string bytes; the recorded CRC32C covers each
  length as a little-endian uint32 (uint64 above 4 GiB), the 4 checksum
  bytes and the string bytes.
  """
  pos = 0
  lengths = []
  for _ in range(count):
    length, pos = _varint(data, pos)
    lengths.append(struct.pack("<I" if length <= _UINT32_MAX else "<Q",
                               length))
  if pos + 4 > len(data):
    raise _TruncatedLengths()
  crc = proto_readers.crc32c(b"".join(lengths))
  return proto_readers.crc32c(data[pos:], crc)


def _stored_crc(data: bytes, entry: proto_readers.BundleEntry
                ) -> Optional[int]:
  """The CRC32C of an entry's stored bytes as TensorFlow computes it, or
  None when this module does not know how (variant tensors)."""
  if entry.dtype in _STRING_TYPES:
    if entry.shape is None:
      return None
    count = 1
    for dim in entry.shape:
      count *= max(dim, 0)
    try:
      return _string_crc(data, count)
    except _TruncatedLengths:
      return -1  # Lengths that do not parse cannot match any checksum.
  if entry.dtype in _RAW_EXCEPTIONS:
    return None
  return proto_readers.crc32c(data)


def _checked_entries(index: proto_readers.BundleIndex, shard_id=None):
  return sorted((e for e in index.entries + index.slice_entries
                 if e.crc32c is not None and e.size and not e.sliced
                 and (shard_id is None or e.shard_id == shard_id)),
                key=lambda e: (e.shard_id, e.offset))


def _first_mismatch(path: str, index: proto_readers.BundleIndex,
                    shard_id: Optional[int] = None
                    ) -> Optional[Tuple[proto_readers.BundleEntry, int]]:
  """The first entry whose stored bytes fail their CRC32C, with what they
  gave; None when all that can be checked match.

  Raises:
    OSError: a shard cannot be read.
  """
  prefix = os.path.join(path, VARIABLES_PREFIX)
  shards: Dict[int, object] = {}
  try:
    for entry in _checked_entries(index, shard_id):
      f = shards.get(entry.shard_id)
      if f is None:
        f = shards[entry.shard_id] = open(proto_readers.shard_filename(
            prefix, entry.shard_id, index.num_shards), "rb")
      f.seek(entry.offset)
      got = _stored_crc(f.read(entry.size), entry)
      if got is not None and got != proto_readers.unmask_crc(entry.crc32c):
        return entry, got
  finally:
    for f in shards.values():
      f.close()
  return None


def _check_checksums(info: ModelInfo, handle: Optional[str],
                     index: proto_readers.BundleIndex, limit: int) -> None:
  total = sum(e.size for e in index.entries + index.slice_entries)
  if limit <= 0 or not index.entries:
    return
  if total > limit:
    logging.info("hub_adapter: not pre-verifying the %d bytes of variables "
                 "of %r (more than %s=%d); TensorFlow's restore verifies "
                 "them.", total, handle or info.path, VERIFY_MAX_BYTES_ENV,
                 limit)
    return
  try:
    found = _first_mismatch(info.path, index)
  except OSError as e:  # _check_shards opened every shard a moment ago.
    raise _error(f"The variables of model {handle or info.path!r} cannot be "
                 "read.", f"{type(e).__name__}: {e}", info, handle,
                 reader.VARIABLES_INDEX) from e
  if found is not None:
    entry, got = found
    because = (f"the string lengths in its {entry.size} bytes at byte "
               f"{entry.offset} do not parse" if got < 0 else
               f"CRC32C of its {entry.size} bytes at byte {entry.offset} is "
               f"{got}; the index records "
               f"{proto_readers.unmask_crc(entry.crc32c)}")
    raise _corrupt_shard(info.path, handle, index, entry, info=info,
                         because=because)


def _corrupt_shard(path: str, handle: Optional[str],
                   index: Optional[proto_readers.BundleIndex],
                   entry: Optional[proto_readers.BundleEntry], *,
                   info: Optional[ModelInfo] = None, because: str,
                   shard_id: int = 0) -> errors.ModelFormatError:
  if entry is not None:
    shard_id = entry.shard_id
  num_shards = index.num_shards if index is not None else 1
  shard = proto_readers.shard_filename(VARIABLES_PREFIX, shard_id, num_shards)
  why = (f"Variable {entry.key!r} does not match its checksum in "
         f"variables.index ({because})." if entry is not None else
         f"TensorFlow's restore read bytes that do not match their "
         f"checksum in variables.index ({because}).")
  return _error(f"Variable data file {shard} of model {handle or path!r} is "
                "corrupt.", why, info, handle, shard, path=path)


_TF_BUNDLE = re.compile(r"TensorBundle at (?P<prefix>.+?) shard (?P<shard>\d+)")


def restore_error(exc: BaseException, path: str,
                  handle: Optional[str] = None
                  ) -> Optional[errors.ModelFormatError]:
  """TensorFlow's checksum failure in a restore, as a clear error.

  TensorFlow verifies the CRC32C of every tensor it restores and raises a
  ``DataLossError`` (a plain ``OpError`` for the object graph) that names
  the checkpoint prefix and shard but not the file or the variable. This
  turns it into the :class:`~hub_adapter.errors.ModelFormatError` the
  pre-check raises, naming the data file and (found with a CRC32C pass over
  that shard) the first damaged variable.

  Args:
    exc: What TensorFlow raised while loading ``path``.
    path: The model folder.
    handle: The handle, quoted in the message.

  Returns:
    The error to raise instead, or None when ``exc`` is not a checksum
    failure.
  """
  text = str(exc)
  kinds = {cls.__name__ for cls in type(exc).__mro__}
  if "Checksum does not match" not in text and "DataLossError" not in kinds:
    return None
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  reason = next((line for line in lines if "Checksum" in line),
                lines[0] if lines else "")
  reason = re.sub(r"^\{\{[^}]*\}\}\s*", "", reason)
  reason = re.sub(r"\s*\[Op:\w+\]$", "", reason)
  because = f"{type(exc).__name__}: {reason}"
  match = _TF_BUNDLE.search(text)
  shard_id = int(match.group("shard")) if match else None
  try:
    index = reader.read_bundle_index(path, handle)
  except errors.ModelFormatError as e:
    return e
  if index is None:
    return None
  try:
    found = _first_mismatch(path, index, shard_id)
  except OSError:
    found = None
  logging.info("hub_adapter: TensorFlow's restore of %r failed its "
               "checksum check: %s", handle or path, because)
  return _corrupt_shard(path, handle, index, found[0] if found else None,
                        because=because, shard_id=shard_id or 0)


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
                     "model folder.", info, handle, reader.SAVED_MODEL_PB,
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
      os.path.join(info.path, reader.SAVED_MODEL_PB)):
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
                 info, handle, reader.SAVED_MODEL_PB,
                 "Fetch the model again (delete its cache entry first) or "
                 "re-export it. If you rewrote saved_model.pb on purpose, "
                 f"delete {FINGERPRINT_FILE}.")


def check_folder(info: ModelInfo, handle: Optional[str] = None, *,
                 verify_max_bytes: Optional[int] = None,
                 fingerprint: Optional[bool] = True) -> None:
  """Checks that the files a model needs are present and intact.

  Args:
    info: What ``inspect_folder(path)`` returned for the folder (its parsing
      already checked saved_model.pb, tfhub_module.pb and variables.index).
    handle: The handle, quoted in errors.
    verify_max_bytes: Verify variable checksums when the variables total at
      most this many bytes (default: env ``HUB_ADAPTER_VERIFY_MAX_BYTES`` or
      64 MiB; 0 never).
    fingerprint: Compare saved_model.pb with ``fingerprint.pb``; that needs
      TensorFlow's C++ fingerprinting, so it imports TensorFlow. None: only
      when TensorFlow is imported already (``hub-adapter inspect``).

  Raises:
    ModelFormatError: a file is missing, truncated, unreadable or corrupt;
      the message names it.
  """
  saved_model = info.saved_model
  if saved_model is None:
    saved_model = reader.read_saved_model(info.path, handle)
  if fingerprint is None:
    fingerprint = "tensorflow" in sys.modules
  if fingerprint:
    _check_fingerprint(info, handle)
  index = info.bundle_index
  if index is None:
    index = reader.read_bundle_index(info.path, handle)
  index_rel = reader.VARIABLES_INDEX
  if index is None:
    data_files = _listdir(os.path.join(info.path, reader.VARIABLES_DIR))
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


__all__ = ["check_folder", "restore_error", "asset_file_defs",
           "VERIFY_MAX_BYTES_ENV"]
