"""``inspect(handle)`` and its report: what a model is, without running it.

:func:`inspect` resolves a handle and reads its folder through the one
preflight (:func:`hub_adapter.preflight.open_model`), then adds the add-on
op libraries the model needs (:mod:`hub_adapter.op_libraries`, from the
static table: TensorFlow is not imported) and the flagged ops
(:mod:`hub_adapter.untrusted`). :func:`describe` and :func:`to_json` present
the :class:`~hub_adapter.model_info.ModelInfo` for ``hub-adapter inspect``.

The folder reader itself is :mod:`hub_adapter.reader`; its public names are
re-exported here.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, FrozenSet

from hub_adapter import errors
from hub_adapter import op_libraries
from hub_adapter import preflight
from hub_adapter import signatures as signatures_lib
from hub_adapter import untrusted
from hub_adapter.model_info import ModelInfo, TensorInfo
from hub_adapter.support import Format
from hub_adapter.reader import (CONVERTED_ATTACHMENTS_ASSET,  # pylint: disable=unused-import
                                check_folder_exists, dtype_name,
                                inspect_folder, read_bundle_index,
                                read_module_def, read_saved_model)


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
    ModelFormatError: the folder is not a readable model, or a file it
      needs is missing or corrupt (:func:`hub_adapter.integrity.check_folder`).
  """
  # No fingerprint check unless TensorFlow is imported: inspect never
  # imports it (the checksum is TensorFlow's C++ code).
  _, info = preflight.open_model(handle, fingerprint=None)
  info = dataclasses.replace(info, op_libraries=op_libraries.needs(
      info.saved_model))
  if scan:
    info = dataclasses.replace(info, flagged_ops=untrusted.scan(info))
  return info


def _tags_text(tags: FrozenSet[str]) -> str:
  return signatures_lib.format_tags(tags, empty="{} (empty)", quoted=False)


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
    lines.extend(op_libraries.describe_needs(info.op_libraries))
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


__all__ = ["inspect", "describe", "to_json", "format_bytes",
           "inspect_folder", "read_saved_model", "read_module_def",
           "read_bundle_index", "check_folder_exists", "dtype_name"]
