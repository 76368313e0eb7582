"""``hub_adapter.load()``: one entry point for every format and mode.

``load`` resolves the handle to a folder, reads the folder's protos into a
``ModelInfo``, checks the folder, looks the (format, operation, mode) cell up
in :mod:`hub_adapter.support`, validates the whole request (tag set,
signature, output) against the ``ModelInfo`` and only then hands a
:class:`~hub_adapter.model.LoadRequest` to the backend the cell names. So a
wrong signature or an unsupported combination fails here, before any graph
or variable is built.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from hub_adapter import errors
from hub_adapter import runtime
from hub_adapter import signatures as signatures_lib
from hub_adapter import support
from hub_adapter.model import LoadRequest, Model
from hub_adapter.support import Format, Operation


def _split_trainable(trainable: Any, tags: Any, handle: Any):
  """Accepts ``hub.load(handle, tags)``'s positional tags in ``trainable``.

  ``hub.load`` takes ``tags`` second; so that ``hub_adapter.load(handle,
  {"train"})`` keeps meaning what it meant there, a set/list/tuple of strings
  in the ``trainable`` position is taken as the tag set.
  """
  if isinstance(trainable, (set, frozenset, list, tuple)):
    if tags is not None:
      raise errors.SignatureError(errors.compose(
          f"A tag set was given twice: {trainable!r} in the trainable "
          f"position and tags={tags!r}.",
          "hub_adapter.load(handle, trainable=False, options=None, *, "
          "tags=None, ...) "
          "takes tags as a keyword.",
          "Pass tags=... once and trainable=True/False.",
          {"handle": handle}), handle=handle)
    return False, trainable
  return bool(trainable), tags


def plan(handle: str, path: str, info: Any, mode: support.Mode,
         operation: Operation, *, signature: Optional[str] = None,
         tags: Any = None, output_key: Optional[str] = None,
         as_dict: Optional[bool] = None, options: Any = None) -> LoadRequest:
  """Validates a request against a ``ModelInfo`` and builds the LoadRequest.

  Nothing is loaded: tag set, signature and output are checked from the
  protos alone.

  Args:
    handle: The handle as given.
    path: The resolved folder.
    info: Its ``ModelInfo``.
    mode: The running mode.
    operation: ``Operation.LOAD`` or ``Operation.FINE_TUNE``.
    signature: The signature asked for, or None.
    tags: The tag set asked for, or None.
    output_key: The output asked for, or None.
    as_dict: Whether all outputs are wanted as a dict, or None.
    options: ``tf.saved_model.LoadOptions`` or None.

  Returns:
    The :class:`LoadRequest`.

  Raises:
    SignatureError: the tag set, signature or output does not exist, or no
      signature can be picked; the message lists the choices.
  """
  picked_tags = signatures_lib.pick_tags(info, tags, handle=handle, mode=mode)
  picked = signatures_lib.pick_signature(
      info, picked_tags, signature, handle=handle, mode=mode)
  signature_info = (None if picked is None
                    else info.signatures_for(picked_tags)[picked])
  signatures_lib.check_outputs(
      signature_info, output_key, as_dict, info=info, handle=handle,
      mode=mode, signature=picked)
  train_tags = None
  if info.format is Format.TF1_HUB:
    candidate = info.train_tags
    if candidate is not None and picked in info.signatures_for(candidate):
      train_tags = candidate
  return LoadRequest(
      handle=handle, path=path, info=info, mode=mode, operation=operation,
      signature=picked, tags=picked_tags, train_tags=train_tags,
      output_key=output_key, as_dict=as_dict, options=options)


def load(handle, trainable=False, options: Any = None, *,
         signature: Optional[str] = None, tags=None,
         output_key: Optional[str] = None, as_dict: Optional[bool] = None,
         safe: bool = False, restore: Optional[str] = None) -> Model:
  """Loads a TF Hub model of any format, in the running mode.

  Works like ``hub.load(handle, tags, options)`` and more: the result is a
  :class:`~hub_adapter.model.Model` that is callable whatever the format
  (``model(inputs, training=None)``), exposes ``signatures``, ``variables``,
  ``trainable_variables``, ``regularization_losses`` and ``update_ops``, and
  passes other attributes through to the object ``tf.saved_model.load``
  returned (``model.raw``).

  Args:
    handle: A local folder, a ``.tar.gz`` archive, or a URL/model handle
      (see ``hub_adapter.resolve``).
    trainable: True to fine-tune: the variables become trainable (and, in
      TF1 compat mode, join ``TRAINABLE_VARIABLES`` with their regularization
      losses and update ops in the graph collections).
      For drop-in use of ``hub.load(handle, tags, options)``, a set, list or
      tuple of tags here is taken as ``tags`` (and None as
      ``trainable=False``).
    options: ``tf.saved_model.LoadOptions``; third positionally, as in
      ``hub.load``. Under a ``tf.distribute`` strategy, when None,
      ``LoadOptions(experimental_io_device=...)`` for the local host is
      used.
    signature: The signature to apply when the model is called. Default:
      TF1 Hub ``default`` (else the only one); TF2 the root ``__call__``
      (else ``serving_default``, else the only one).
    tags: The graph variant (tag set) to load; default: the empty set, else
      ``{"serve"}``, else the only one.
    output_key: The output to return from a signature's outputs dict.
    as_dict: True to return a signature's outputs as a dict (as
      ``signature_outputs_as_dict`` of ``hub.KerasLayer``).
    safe: True to refuse models whose graphs hold ops that read or write
      files, use the network or run code.
    restore: How a TF2 SavedModel's variables are restored in TF2 mode:
      ``"parallel"`` (read in threads while the model is rebuilt; where
      unsure, TensorFlow's own restore) or ``"tensorflow"`` (exactly as
      ``tf.saved_model.load``). Default: ``"parallel"``, unless the
      environment sets ``HUB_ADAPTER_PARALLEL_RESTORE=0``.

  Returns:
    A :class:`~hub_adapter.model.Model`.

  Raises:
    HandleError: the handle cannot be resolved to a folder.
    ModelFormatError: the folder is not a model TF Hub can serve.
    UnsupportedOperationError: the support table refuses this format,
      operation and mode (e.g. fine-tuning a TF1 Hub module in TF2).
    SignatureError: the tag set, signature or output does not exist.
    UnsafeModelError: ``safe=True`` and the model has flagged ops.
    HubAdapterError: ``restore`` is not ``"parallel"``, ``"tensorflow"`` or
      None.
    BackendUnavailableError: the backend for the cell cannot be imported,
      or the model uses ops of a library (e.g. tensorflow_text) that is not
      installed (the message names the ops and the pip package); installed
      libraries are imported here, before loading.
  """
  # Imported here, not at the top, so that ``import hub_adapter`` stays free
  # of TensorFlow and protobuf work until the first load.
  # pylint: disable=g-import-not-at-top
  from hub_adapter import op_libraries
  from hub_adapter import preflight
  # pylint: enable=g-import-not-at-top
  restore_lib = None
  if restore is not None:
    from hub_adapter.tf2 import restore as restore_lib  # pylint: disable=g-import-not-at-top
    restore_lib.check_method(restore)
  trainable, tags = _split_trainable(trainable, tags, handle)
  if isinstance(handle, os.PathLike):
    handle = os.fspath(handle)
  tags = signatures_lib.normalize_tags(tags)
  path, info = preflight.open_model(handle, safe=safe)
  mode = runtime.current_mode()
  operation = Operation.FINE_TUNE if trainable else Operation.LOAD
  cell = support.require(info.format, operation, mode, handle=handle)
  request = plan(handle, path, info, mode, operation, signature=signature,
                 tags=tags, output_key=output_key, as_dict=as_dict,
                 options=options)
  op_libraries.ensure_op_libraries(
      info, handle, mode=mode, operation=operation)
  if restore_lib is None:
    return support.backend(cell)(request)
  with restore_lib.using(restore):
    return support.backend(cell)(request)
