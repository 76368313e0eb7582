"""The small protocol messages of the TF1 Hub format, without tensorflow_hub.

A TF1 Hub module folder holds ``tfhub_module.pb``, a serialized ``ModuleDef``
(field 1 ``format``, an enum whose only valid value is 3; field 2
``required_features``, repeated strings a reader must understand), next to a
SavedModel. Messages attached with ``attach_message`` are stored in each meta
graph's ``hub_module_attachments`` collection as serialized
``ModuleAttachment`` protos (field 1 ``key``, field 2 ``value`` bytes), and
image modules conventionally attach an ``ImageModuleInfo`` under the key
``image_module_info``.

tensorflow_hub 0.16 no longer ships every generated ``*_pb2`` module, so the
message classes here are built from descriptors at import time, in a private
descriptor pool: they carry the same full names (``tensorflow_hub.ModuleDef``
...) and wire format as the originals, yet never clash with tensorflow_hub's
own classes when both are imported. This module imports only
``google.protobuf``.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping, Optional

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory

from hub_adapter import errors

# The names of the TF1 Hub format, in one place. TensorFlow's own names are
# spelled out so that this module need not import TensorFlow.
MODULE_DEF_FILENAME = "tfhub_module.pb"
SAVED_MODEL_FILENAME = "saved_model.pb"
VARIABLES_DIR = "variables"
VARIABLES_PREFIX = "variables"
ASSETS_DIR = "assets"
FORMAT_V3 = 3
SUPPORTED_FEATURES: frozenset = frozenset()
ATTACHMENT_COLLECTION = "hub_module_attachments"
IMAGE_MODULE_INFO_KEY = "image_module_info"
DEFAULT_SIGNATURE = "default"
# tf.compat.v1.saved_model.ASSETS_KEY: on disk, maps asset constants to files.
ASSETS_KEY = "saved_model_assets"
# The string an asset constant holds on disk; the loader replaces it with the
# file's path inside the module's assets/ folder.
ASSET_PLACEHOLDER = b"SAVEDMODEL-ASSET"
# tf.compat.v1.GraphKeys names.
GLOBAL_VARIABLES = "variables"
TRAINABLE_VARIABLES = "trainable_variables"
MODEL_VARIABLES = "model_variables"
TABLE_INITIALIZERS = "table_initializer"
UPDATE_OPS = "update_ops"
REGULARIZATION_LOSSES = "regularization_losses"
ASSET_FILEPATHS = "asset_filepaths"
COND_CONTEXT = "cond_context"
WHILE_CONTEXT = "while_context"
# The collections a module's graph may carry, as tensorflow_hub 0.15 checks
# them (native_module._SUPPORTED_COLLECTIONS): the attachment collection is
# one of them. Its loader removes ASSETS_KEY before that check, so a check of
# a meta graph as stored on disk must allow ASSETS_KEY as well
# (STORED_COLLECTIONS).
SUPPORTED_COLLECTIONS = frozenset({
    GLOBAL_VARIABLES, TRAINABLE_VARIABLES, MODEL_VARIABLES,
    TABLE_INITIALIZERS, UPDATE_OPS, REGULARIZATION_LOSSES, ASSET_FILEPATHS,
    COND_CONTEXT, WHILE_CONTEXT, ATTACHMENT_COLLECTION,
})
STORED_COLLECTIONS = SUPPORTED_COLLECTIONS | {ASSETS_KEY}

_F = descriptor_pb2.FieldDescriptorProto


def _field(message, name: str, number: int, ftype: int,
           label: int = _F.LABEL_OPTIONAL, type_name: str = ""):
  field = message.field.add(name=name, number=number, type=ftype, label=label)
  if type_name:
    field.type_name = type_name
  return field


def _build_file() -> descriptor_pb2.FileDescriptorProto:
  """Describes the three messages in one proto3 file."""
  f = descriptor_pb2.FileDescriptorProto(
      name="hub_adapter/tf1/hub_protos.proto", package="tensorflow_hub",
      syntax="proto3")

  module_def = f.message_type.add(name="ModuleDef")
  fmt = module_def.enum_type.add(name="Format")
  fmt.value.add(name="FORMAT_UNSPECIFIED", number=0)
  fmt.value.add(name="FORMAT_V3", number=FORMAT_V3)
  _field(module_def, "format", 1, _F.TYPE_ENUM,
         type_name=".tensorflow_hub.ModuleDef.Format")
  _field(module_def, "required_features", 2, _F.TYPE_STRING,
         label=_F.LABEL_REPEATED)

  attachment = f.message_type.add(name="ModuleAttachment")
  _field(attachment, "key", 1, _F.TYPE_STRING)
  _field(attachment, "value", 2, _F.TYPE_BYTES)

  image_info = f.message_type.add(name="ImageModuleInfo")
  size = image_info.nested_type.add(name="InputSize")
  _field(size, "height", 1, _F.TYPE_INT32)
  _field(size, "width", 2, _F.TYPE_INT32)
  _field(image_info, "default_image_size", 1, _F.TYPE_MESSAGE,
         type_name=".tensorflow_hub.ImageModuleInfo.InputSize")
  return f


def _message_class(descriptor):
  get_class = getattr(message_factory, "GetMessageClass", None)
  if get_class is not None:
    return get_class(descriptor)
  return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(
      descriptor)


_POOL = descriptor_pool.DescriptorPool()
_POOL.AddSerializedFile(_build_file().SerializeToString())

ModuleDef = _message_class(_POOL.FindMessageTypeByName("tensorflow_hub.ModuleDef"))
ModuleAttachment = _message_class(
    _POOL.FindMessageTypeByName("tensorflow_hub.ModuleAttachment"))
ImageModuleInfo = _message_class(
    _POOL.FindMessageTypeByName("tensorflow_hub.ImageModuleInfo"))


def module_def_path(module_dir: str) -> str:
  """Returns the path of ``tfhub_module.pb`` in a module folder."""
  return os.path.join(module_dir, MODULE_DEF_FILENAME)


def parse_module_def(data: bytes, *, source: str = MODULE_DEF_FILENAME,
                     **context):
  """Parses and validates serialized ``ModuleDef`` bytes.

  The one ``ModuleDef`` validator: the folder reader
  (``hub_adapter.inspection``) and the TF1 backend both use it.

  Args:
    data: The file's bytes.
    source: The file or handle, quoted in errors.
    **context: Extra attributes of the raised error (``handle``, ``path``,
      ``file``).

  Returns:
    The ``ModuleDef`` message.

  Raises:
    ModelFormatError: the bytes do not parse, the format version is not 3, or
      the module requires features this reader does not know.
  """
  module_def = ModuleDef()
  try:
    module_def.ParseFromString(data)
  except Exception as e:  # DecodeError differs between protobuf runtimes.
    raise errors.ModelFormatError(errors.compose(
        f"Cannot parse {source}: it is corrupt, not a TF1 Hub ModuleDef.",
        f"The protobuf decoder failed: {e} ({len(data)} bytes).",
        "Re-download or re-export the module (delete its cache entry "
        "first); the file is corrupt or is not a TF1 Hub module definition.",
        {"file": source}), **context) from e
  check_module_def(module_def, source=source, **context)
  return module_def


def check_module_def(module_def, *, source: str = MODULE_DEF_FILENAME,
                     **context) -> None:
  """Raises ModelFormatError unless ``module_def`` is a readable version.

  Args:
    module_def: A ``ModuleDef`` message.
    source: The file or handle, quoted in errors.
    **context: Extra attributes of the raised error (``handle``, ``path``,
      ``file``).

  Raises:
    ModelFormatError: unknown format version or required features.
  """
  if module_def.format != FORMAT_V3:
    raise errors.ModelFormatError(errors.compose(
        f"Unsupported TF1 Hub module format {module_def.format} in {source}: "
        f"format version {module_def.format} is not supported.",
        f"Only ModuleDef format {FORMAT_V3} (FORMAT_V3) exists, and it is "
        f"what tensorflow_hub reads; got {module_def.format}: the file is "
        "damaged or from an unknown future writer.",
        "Fetch the module again, use a module exported by tensorflow_hub "
        "(format 3), or a TF2 SavedModel version of the model.",
        {"file": source, "expected_format": FORMAT_V3,
         "received_format": module_def.format}),
        expected=FORMAT_V3, received=module_def.format, **context)
  unknown = sorted(set(module_def.required_features) - SUPPORTED_FEATURES)
  if unknown:
    raise errors.ModelFormatError(errors.compose(
        f"The TF1 Hub module {source} requires unknown features "
        f"{errors.choices(unknown)}, which this reader does not know.",
        "A module that lists required_features can only be used by a reader "
        "that implements all of them; known features: "
        f"{errors.choices(SUPPORTED_FEATURES)}.",
        "Use a TF2 SavedModel version of the model, or a newer module "
        "reader.", {"file": source}),
        expected=sorted(SUPPORTED_FEATURES), received=unknown, **context)


def read_module_def(module_dir: str):
  """Reads and validates ``tfhub_module.pb`` of a module folder.

  Args:
    module_dir: The module folder.

  Returns:
    The ``ModuleDef`` message.

  Raises:
    ModelFormatError: the file is missing, unreadable or of an unknown
      version or feature set.
  """
  path = module_def_path(module_dir)
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise errors.ModelFormatError(errors.compose(
        f"Cannot read {path}.",
        f"{type(e).__name__}: {e}. A TF1 Hub module folder holds "
        "tfhub_module.pb next to saved_model.pb.",
        "Check the folder; a folder without tfhub_module.pb is a TF2 "
        "SavedModel, which hub_adapter.load(handle) reads.",
        {"folder": module_dir})) from e
  return parse_module_def(data, source=path)


def serialize_module_def(required_features: Iterable[str] = ()) -> bytes:
  """Returns the bytes of a format-3 ``ModuleDef`` for writing a module."""
  module_def = ModuleDef(format=FORMAT_V3)
  module_def.required_features.extend(required_features)
  return module_def.SerializeToString()


def decode_attachments(values: Iterable[bytes], *,
                       source: str = "module") -> "dict[str, bytes]":
  """Decodes serialized ``ModuleAttachment`` protos into key -> bytes.

  A later attachment for the same key wins, as in tensorflow_hub.

  Args:
    values: The serialized protos of the attachment collection.
    source: What to name in errors.

  Returns:
    A dict from key to the attached message's serialized bytes.

  Raises:
    ModelFormatError: an entry does not parse.
  """
  result = {}
  for data in values:
    attachment = ModuleAttachment()
    try:
      attachment.ParseFromString(data)
    except Exception as e:  # DecodeError differs between protobuf runtimes.
      raise errors.ModelFormatError(errors.compose(
          f"An attached message of {source} is corrupt.",
          f"The {ATTACHMENT_COLLECTION} collection holds bytes that are not "
          f"a ModuleAttachment: {e}.", "Re-export the module.")) from e
    result[attachment.key] = attachment.value
  return result


def encode_attachments(attachments: Mapping[str, bytes]) -> "list[bytes]":
  """Serializes key -> bytes as ``ModuleAttachment`` protos, in key order
  of insertion."""
  return [ModuleAttachment(key=key, value=value).SerializeToString()
          for key, value in attachments.items()]


def parse_message(message_type, data: bytes):
  """Parses ``data`` into a new instance of ``message_type``."""
  message = message_type()
  message.ParseFromString(data)
  return message


def image_size(info) -> Optional["tuple[int, int]"]:
  """Returns (height, width) of an ``ImageModuleInfo``, or None if unset."""
  size = info.default_image_size
  if size.height and size.width:
    return int(size.height), int(size.width)
  return None
