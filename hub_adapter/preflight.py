"""One way into a model folder: resolve, read, check.

Every entry point (``load``, ``KerasLayer``, ``convert``, ``inspect``,
``Module``/``load_module_spec``) starts with :func:`open_model`: the handle is
resolved to a local folder (:mod:`hub_adapter.handles`), the folder's protos
are read and parsed once into a :class:`~hub_adapter.model_info.ModelInfo`
(:mod:`hub_adapter.reader`), which carries the parsed ``saved_model.pb``
and ``variables.index`` on to the later steps, and the files the model needs
are checked (:mod:`hub_adapter.integrity`). With ``safe=True`` the graphs are
also scanned for ops that touch files, the network or run host code
(:mod:`hub_adapter.untrusted`).

Nothing here imports TensorFlow.
"""
from __future__ import annotations

import os
from typing import Any, Optional, Tuple

from hub_adapter import handles
from hub_adapter import reader
from hub_adapter import integrity
from hub_adapter import untrusted
from hub_adapter.model_info import ModelInfo


def open_model(handle: Any, *, check: bool = True, safe: bool = False,
               quoted: Optional[str] = None,
               fingerprint: Optional[bool] = True) -> Tuple[str, ModelInfo]:
  """Resolves a handle and reads its model folder, checked.

  Args:
    handle: Any handle :func:`hub_adapter.handles.resolve` accepts (a path,
      ``os.PathLike``, URL or TF Hub handle).
    check: Run :func:`hub_adapter.integrity.check_folder` (missing,
      truncated or corrupt files).
    safe: Refuse models whose graphs hold flagged ops
      (:func:`hub_adapter.untrusted.refuse_if_unsafe`).
    quoted: The handle as error messages quote it (default: ``handle``).
    fingerprint: Passed to :func:`hub_adapter.integrity.check_folder`: True
      compares saved_model.pb with ``fingerprint.pb`` (imports TensorFlow),
      None only when TensorFlow is imported already (``inspect``).

  Returns:
    (the local folder, its :class:`ModelInfo`); the info carries the parsed
    protos (``info.saved_model``, ``info.bundle_index``).

  Raises:
    HandleError: the handle cannot be resolved to a folder.
    ModelFormatError: the folder is not a readable model, or (``check``) a
      file it needs is missing or corrupt.
    UnsafeModelError: ``safe`` and the model has flagged ops.
  """
  if isinstance(handle, os.PathLike):
    handle = os.fspath(handle)
  quoted = handle if quoted is None else quoted
  path = handles.resolve(handle)
  info = reader.inspect_folder(path, handle=quoted)
  if check:
    integrity.check_folder(info, quoted, fingerprint=fingerprint)
  if safe:
    untrusted.refuse_if_unsafe(info, quoted)
  return path, info


__all__ = ["open_model"]
