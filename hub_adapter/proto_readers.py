"""Small, strict readers for the binary files of a model folder.

Everything here reads bytes and never runs anything. Malformed input raises
:class:`ProtoError` (a plain ``ValueError`` subclass) with a short reason;
callers turn it into a :class:`hub_adapter.errors.ModelFormatError` naming
the file. Nothing here imports TensorFlow:

- :func:`tf_proto_module` gives TensorFlow's own generated proto modules
  (``saved_model_pb2``, ``meta_graph_pb2``, ...) without running
  ``import tensorflow`` (seconds, and gigabytes of libraries), so reading a
  ``saved_model.pb`` costs what parsing it costs;
- :func:`dtype_name` and :func:`dtype_size` name ``DataType`` values as
  ``tf.dtypes`` does, from the enum in ``types_pb2``;
- a protobuf wire-format decoder, enough for the tiny messages of the TF1 Hub
  format (``ModuleDef``, ``ModuleAttachment``) and of the checkpoint index
  (``BundleHeaderProto``, ``BundleEntryProto``, ``TensorShapeProto``);
- a reader of ``variables.index``, a LevelDB-style sorted table ("SSTable")
  whose values are ``BundleEntryProto``s, with its block checksums verified
  (CRC32C by ``google-crc32c``).

Why the table reader and the decoder are hand-written: outside TensorFlow
(whose ``tf.train.load_checkpoint`` needs ``import tensorflow`` and says
nothing about which block is damaged) no maintained Python library reads
TensorFlow's tensor-bundle index, and the decoder's strictness (every
malformed input is a ``ProtoError``, which the property tests hold it to)
is what turns a damaged download into a message naming the file.
"""
from __future__ import annotations

import _imp
import dataclasses
import importlib
import importlib.util
import os
import re
import struct
import sys
import threading
import types
from typing import Dict, Iterator, List, Optional, Tuple

import google_crc32c


class ProtoError(ValueError):
  """Bytes that are not the message or file they should be."""


# -- TensorFlow's generated protos, without importing TensorFlow -------------

# The packages TensorFlow's proto modules live in and import each other from.
_TF_PROTO_PACKAGES = ("tensorflow", "tensorflow.core",
                      "tensorflow.core.framework", "tensorflow.core.protobuf")
_tf_protos: Dict[str, types.ModuleType] = {}
_tf_protos_lock = threading.Lock()


def tf_proto_module(name: str) -> types.ModuleType:
  """TensorFlow's generated proto module ``name``, e.g.
  ``"tensorflow.core.protobuf.saved_model_pb2"``.

  When TensorFlow is imported already this is a plain import. Otherwise the
  module is loaded from the installed TensorFlow with bare stand-ins for its
  parent packages, so ``tensorflow/__init__.py`` does not run, and every
  module this added to ``sys.modules`` is taken out again: a later ``import
  tensorflow`` starts from scratch, and protobuf hands it the same message
  classes (they are kept per descriptor), so messages parsed here are
  TensorFlow's own types.

  Raises:
    ImportError: TensorFlow is not installed.
  """
  if "tensorflow" in sys.modules:
    return importlib.import_module(name)
  with _tf_protos_lock:
    module = _tf_protos.get(name)
    if module is not None:
      return module
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
      raise ImportError(f"cannot import {name}: TensorFlow is not installed",
                        name="tensorflow")
    root = list(spec.submodule_search_locations)[0]
    _imp.acquire_lock()  # No other thread imports while the stand-ins live.
    try:
      if "tensorflow" in sys.modules:  # Imported meanwhile.
        return importlib.import_module(name)
      before = set(sys.modules)
      try:
        for package in _TF_PROTO_PACKAGES:
          stand_in = types.ModuleType(package)
          stand_in.__path__ = [os.path.join(root, *package.split(".")[1:])]
          sys.modules[package] = stand_in
        module = importlib.import_module(name)
      finally:
        for added in set(sys.modules) - before:
          if added == "tensorflow" or added.startswith("tensorflow."):
            del sys.modules[added]
    finally:
      _imp.release_lock()
    _tf_protos[name] = module
    return module


_DTYPE_RENAMES = {"float": "float32", "double": "float64", "half": "float16"}
_NOT_FIXED_SIZE = frozenset({"string", "resource", "variant"})


def dtype_name(enum_value: int) -> str:
  """``DataType`` enum -> its ``tf.dtypes`` name (``1`` -> ``"float32"``);
  reference types map to their base, unknown values to
  ``unknown_dtype_N``."""
  types_pb2 = tf_proto_module("tensorflow.core.framework.types_pb2")
  try:
    enum_name = types_pb2.DataType.Name(int(enum_value))
  except (ValueError, TypeError):
    return f"unknown_dtype_{enum_value}"
  base = enum_name[len("DT_"):].lower()
  base = base[:-len("_ref")] if base.endswith("_ref") else base
  if base == "invalid":
    return f"unknown_dtype_{enum_value}"
  return _DTYPE_RENAMES.get(base, base)


def dtype_size(name: str) -> Optional[int]:
  """Bytes per element of the dtype named ``name`` (as ``tf.dtypes``'
  ``size``: sub-byte types take a byte), or None for string, resource,
  variant and unknown names."""
  if name in _NOT_FIXED_SIZE or name.startswith("unknown_dtype_"):
    return None
  if name == "bool":
    return 1
  bits = re.search(r"\d+", name)
  return max(1, int(bits.group()) // 8) if bits else None


# -- protobuf wire format ----------------------------------------------------

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = range(6)


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
  """Decodes a base-128 varint at ``pos``; returns (value, next position)."""
  result = 0
  shift = 0
  while True:
    if pos >= len(data):
      raise ProtoError("truncated varint")
    byte = data[pos]
    pos += 1
    result |= (byte & 0x7F) << shift
    if not byte & 0x80:
      return result, pos
    shift += 7
    if shift >= 64:
      raise ProtoError("varint longer than 10 bytes")


def fields(data: bytes) -> Iterator[Tuple[int, int, object]]:
  """Yields (field number, wire type, value) for each field of a message.

  Varints and fixed ints come back as ``int``, length-delimited fields as
  ``bytes``. Groups (deprecated) are refused.

  Raises:
    ProtoError: the bytes are not a well-formed message.
  """
  pos = 0
  end = len(data)
  while pos < end:
    key, pos = _varint(data, pos)
    number, wire = key >> 3, key & 7
    if number == 0:
      raise ProtoError("field number 0")
    if wire == _VARINT:
      value, pos = _varint(data, pos)
    elif wire == _FIXED64:
      if pos + 8 > end:
        raise ProtoError("truncated fixed64")
      value = struct.unpack_from("<Q", data, pos)[0]
      pos += 8
    elif wire == _FIXED32:
      if pos + 4 > end:
        raise ProtoError("truncated fixed32")
      value = struct.unpack_from("<I", data, pos)[0]
      pos += 4
    elif wire == _LENGTH:
      size, pos = _varint(data, pos)
      if pos + size > end:
        raise ProtoError("length-delimited field runs past the end")
      value = bytes(data[pos:pos + size])
      pos += size
    else:
      raise ProtoError(f"unsupported wire type {wire}")
    yield number, wire, value


def _as_int64(value: int) -> int:
  """Reinterprets an unsigned varint as a two's-complement int64."""
  value &= (1 << 64) - 1
  return value - (1 << 64) if value >> 63 else value


def _text(value: object, what: str) -> str:
  if not isinstance(value, bytes):
    raise ProtoError(f"{what} is not a string")
  try:
    return value.decode("utf-8")
  except UnicodeDecodeError as e:
    raise ProtoError(f"{what} is not UTF-8") from e


def _expect(wire: int, want: int, what: str) -> None:
  if wire != want:
    raise ProtoError(f"{what} has wire type {wire}, expected {want}")


# -- TF1 Hub format ------------------------------------------------------------

def parse_module_def(data: bytes) -> Tuple[int, Tuple[str, ...]]:
  """Parses ``tfhub_module.pb`` (a ``tensorflow_hub.ModuleDef``).

  Args:
    data: The file's bytes.

  Returns:
    (format, required_features). ``format`` is 0 when the field is absent.

  Raises:
    ProtoError: the bytes are not a ModuleDef.
  """
  fmt = 0
  features: List[str] = []
  for number, wire, value in fields(data):
    if number == 1:
      _expect(wire, _VARINT, "ModuleDef.format")
      fmt = _as_int64(value)
    elif number == 2:
      _expect(wire, _LENGTH, "ModuleDef.required_features")
      features.append(_text(value, "a required feature"))
  return fmt, tuple(features)


def parse_module_attachment(data: bytes) -> Tuple[str, bytes]:
  """Parses one ``tensorflow_hub.ModuleAttachment`` (key, serialized value)."""
  key, payload = "", b""
  for number, wire, value in fields(data):
    if number == 1:
      _expect(wire, _LENGTH, "ModuleAttachment.key")
      key = _text(value, "ModuleAttachment.key")
    elif number == 2:
      _expect(wire, _LENGTH, "ModuleAttachment.value")
      payload = value
  return key, payload


# -- checkpoint index (tensor bundle) ----------------------------------------

@dataclasses.dataclass(frozen=True)
class BundleEntry:
  """One ``BundleEntryProto`` of ``variables.index``.

  Attributes:
    key: The checkpoint key (a TF1 variable name, or a TF2 object path).
    dtype: The ``DataType`` enum value.
    shape: The dimensions (-1 for unknown), or None for unknown rank.
    shard_id: The data shard the bytes live in.
    offset: Byte offset in the shard.
    size: Byte count in the shard.
    crc32c: Masked CRC32C of the bytes, or None.
    sliced: True when the entry describes a partitioned tensor whose bytes
      live in separate slice entries.
  """
  key: str
  dtype: int
  shape: Optional[Tuple[int, ...]]
  shard_id: int
  offset: int
  size: int
  crc32c: Optional[int]
  sliced: bool


@dataclasses.dataclass(frozen=True)
class BundleIndex:
  """A parsed ``variables.index``.

  Attributes:
    num_shards: How many ``variables.data-XXXXX-of-NNNNN`` files exist.
    entries: Named entries, in key order.
    slice_entries: Entries whose keys encode tensor slices (binary keys);
      they hold the bytes of partitioned variables.
  """
  num_shards: int
  entries: Tuple[BundleEntry, ...]
  slice_entries: Tuple[BundleEntry, ...]


def parse_tensor_shape(data: bytes) -> Optional[Tuple[int, ...]]:
  """Parses a ``TensorShapeProto``; None means unknown rank."""
  dims: List[int] = []
  unknown_rank = False
  for number, wire, value in fields(data):
    if number == 2:
      _expect(wire, _LENGTH, "TensorShapeProto.dim")
      size = 0
      for dnum, dwire, dvalue in fields(value):
        if dnum == 1:
          _expect(dwire, _VARINT, "Dim.size")
          size = _as_int64(dvalue)
      dims.append(size)
    elif number == 3:
      _expect(wire, _VARINT, "TensorShapeProto.unknown_rank")
      unknown_rank = bool(value)
  return None if unknown_rank else tuple(dims)


def _parse_bundle_entry(key: str, data: bytes) -> BundleEntry:
  dtype = 0
  shape: Optional[Tuple[int, ...]] = ()
  shard_id = offset = size = 0
  crc: Optional[int] = None
  sliced = False
  for number, wire, value in fields(data):
    if number in (1, 3, 4, 5):
      _expect(wire, _VARINT, f"BundleEntryProto field {number}")
      value = _as_int64(value)
      if value < 0:
        raise ProtoError(f"negative BundleEntryProto field {number}")
      if number == 1:
        dtype = value
      elif number == 3:
        shard_id = value
      elif number == 4:
        offset = value
      else:
        size = value
    elif number == 2:
      _expect(wire, _LENGTH, "BundleEntryProto.shape")
      shape = parse_tensor_shape(value)
    elif number == 6:
      _expect(wire, _FIXED32, "BundleEntryProto.crc32c")
      crc = value
    elif number == 7:
      sliced = True
  return BundleEntry(key, dtype, shape, shard_id, offset, size, crc, sliced)


def _parse_bundle_header(data: bytes) -> int:
  num_shards = 0
  for number, wire, value in fields(data):
    if number == 1:
      _expect(wire, _VARINT, "BundleHeaderProto.num_shards")
      num_shards = _as_int64(value)
    elif number == 2:
      _expect(wire, _VARINT, "BundleHeaderProto.endianness")
      if value not in (0, 1):
        raise ProtoError(f"unknown endianness {value}")
  if num_shards < 0 or num_shards > 1_000_000:
    raise ProtoError(f"implausible shard count {num_shards}")
  return num_shards


def crc32c(data: bytes, crc: int = 0) -> int:
  """CRC-32C (Castagnoli) of ``data``, continuing from ``crc``.

  Computed by ``google-crc32c`` (C, with the SSE4.2/ARMv8 instruction where
  the CPU has it): about 0.34 s per MiB in pure Python against well under a
  millisecond.
  """
  return google_crc32c.extend(crc, bytes(data))


def mask_crc(crc: int) -> int:
  """LevelDB's CRC masking, as TensorFlow stores checksums in its files."""
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8
          ) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
  """Undoes LevelDB's CRC masking."""
  rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
  return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_TRAILER_SIZE = 5  # compression type byte + masked crc32c


def _read_block(data: bytes, offset: int, size: int) -> bytes:
  end = offset + size
  if offset < 0 or size < 0 or end + _TRAILER_SIZE > len(data):
    raise ProtoError("a block handle points past the end of the file")
  block = data[offset:end]
  kind = data[end]
  (masked,) = struct.unpack_from("<I", data, end + 1)
  if crc32c(data[offset:end + 1]) != unmask_crc(masked):
    raise ProtoError(f"checksum mismatch in the block at byte {offset}")
  if kind != 0:
    raise ProtoError(f"compressed blocks (type {kind}) are not supported")
  return block


def _block_entries(block: bytes) -> Iterator[Tuple[bytes, bytes]]:
  if len(block) < 4:
    raise ProtoError("block too short")
  (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
  limit = len(block) - 4 - 4 * num_restarts
  if num_restarts == 0 or limit < 0:
    raise ProtoError("bad restart array")
  pos = 0
  key = b""
  while pos < limit:
    shared, pos = _varint(block, pos)
    unshared, pos = _varint(block, pos)
    value_len, pos = _varint(block, pos)
    if shared > len(key) or pos + unshared + value_len > limit:
      raise ProtoError("block entry runs past its block")
    key = key[:shared] + block[pos:pos + unshared]
    pos += unshared
    value = block[pos:pos + value_len]
    pos += value_len
    yield key, value


def _block_handle(value: bytes) -> Tuple[int, int]:
  offset, pos = _varint(value, 0)
  size, _ = _varint(value, pos)
  return offset, size


def parse_bundle_index(data: bytes) -> BundleIndex:
  """Parses the bytes of a ``variables.index`` file.

  Args:
    data: The whole file.

  Returns:
    The :class:`BundleIndex`.

  Raises:
    ProtoError: the file is truncated, garbled or not a tensor bundle index.
  """
  if len(data) < _FOOTER_SIZE:
    raise ProtoError(f"only {len(data)} bytes; a table footer needs "
                     f"{_FOOTER_SIZE}")
  (magic,) = struct.unpack_from("<Q", data, len(data) - 8)
  if magic != _TABLE_MAGIC:
    raise ProtoError("no table magic number at the end (truncated or not an "
                     "index file)")
  footer = data[len(data) - _FOOTER_SIZE:]
  _, pos = _varint(footer, 0)  # metaindex offset
  _, pos = _varint(footer, pos)  # metaindex size
  index_offset, pos = _varint(footer, pos)
  index_size, _ = _varint(footer, pos)
  index_block = _read_block(data, index_offset, index_size)
  num_shards: Optional[int] = None
  entries: List[BundleEntry] = []
  slices: List[BundleEntry] = []
  previous: Optional[bytes] = None
  for _, handle in _block_entries(index_block):
    block = _read_block(data, *_block_handle(handle))
    for raw_key, value in _block_entries(block):
      if previous is not None and raw_key <= previous:
        raise ProtoError("keys out of order")
      previous = raw_key
      if raw_key == b"":
        num_shards = _parse_bundle_header(value)
        continue
      if raw_key[:1] == b"\x00":
        slices.append(_parse_bundle_entry(repr(raw_key), value))
        continue
      entries.append(_parse_bundle_entry(_text(raw_key, "a key"), value))
  if num_shards is None:
    raise ProtoError("no bundle header entry")
  for entry in entries + slices:
    if entry.size and entry.shard_id >= num_shards:
      raise ProtoError(f"entry {entry.key!r} names shard {entry.shard_id} of "
                       f"{num_shards}")
  return BundleIndex(num_shards, tuple(entries), tuple(slices))


def shard_filename(prefix: str, shard_id: int, num_shards: int) -> str:
  """``prefix.data-00000-of-00001``: the name TF gives a data shard."""
  return f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}"


__all__ = ["ProtoError", "tf_proto_module", "dtype_name", "dtype_size",
           "fields", "parse_module_def",
           "parse_module_attachment", "parse_tensor_shape", "BundleEntry",
           "BundleIndex", "parse_bundle_index", "crc32c", "mask_crc",
           "unmask_crc",
           "shard_filename"]
