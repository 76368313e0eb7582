"""The error hierarchy of hub_adapter.

Every error a user can meet derives from :class:`HubAdapterError` and also
from the built-in exception a caller would already catch (``ValueError``,
``OSError``, ``NotImplementedError``, ...), so existing ``except`` clauses
written for tensorflow_hub keep working.

Messages follow one shape: what was asked (handle, format, mode, operation),
why it cannot work, and what to do instead. Build them with :func:`compose`.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional


def compose(what: str, why: str = "", fix: str = "",
            context: Optional[Mapping[str, Any]] = None) -> str:
  """Builds a message in the project's shape.

  Args:
    what: One sentence on what was asked and failed.
    why: Why it cannot work.
    fix: What the user should do instead.
    context: Facts worth quoting (handle, folder, format, mode, ...); entries
      whose value is None are left out.

  Returns:
    The message, one fact per line after the first.
  """
  lines = [what.rstrip()]
  if why:
    lines.append(f"Why: {why.rstrip()}")
  if fix:
    lines.append(f"Fix: {fix.rstrip()}")
  for key, value in (context or {}).items():
    if value is not None and value != "":
      lines.append(f"  {key}: {value}")
  return "\n".join(lines)


def choices(values: Iterable[Any]) -> str:
  """Formats the choices that exist, sorted, for an error message."""
  items = sorted(str(v) for v in values)
  return ", ".join(repr(v) for v in items) if items else "(none)"


class HubAdapterError(Exception):
  """Base class of every error raised by hub_adapter."""

  def __init__(self, message: str, **context: Any):
    super().__init__(message)
    self.message = message
    self.context = dict(context)
    for key, value in context.items():
      setattr(self, key, value)

  def __str__(self) -> str:
    return self.message


class UnsupportedOperationError(HubAdapterError, NotImplementedError):
  """A (format, operation, mode) cell of the support table is unsupported.

  Attributes:
    handle: The handle asked for, if any.
    format: The model format (a ``support.Format`` value).
    mode: The TensorFlow mode (a ``support.Mode`` value).
    operation: The operation (a ``support.Operation`` value).
    reason: Why the cell cannot work.
    remedy: What to do instead.
  """

  def __init__(self, *, format, mode, operation, reason: str, remedy: str,
               handle: Optional[str] = None, detail: str = ""):
    fmt = getattr(format, "value", format)
    md = getattr(mode, "value", mode)
    op = getattr(operation, "value", operation)
    what = f"Cannot {str(op).replace('_', '-')} a {fmt} model in {md} mode"
    if handle is not None:
      what += f" (handle {handle!r})"
    what += "." + (f" {detail}" if detail else "")
    super().__init__(
        compose(what, reason, remedy),
        handle=handle, format=format, mode=mode, operation=operation,
        reason=reason, remedy=remedy)


class BackendUnavailableError(HubAdapterError, ImportError):
  """A supported path needs a package or TensorFlow version that is absent."""


class HandleError(HubAdapterError, OSError):
  """A handle cannot be turned into a local model folder."""

  def __init__(self, message: str, **context: Any):
    HubAdapterError.__init__(self, message, **context)


class ArchiveError(HandleError):
  """An archive is refused (unsafe entry, too large, or broken)."""


class CacheError(HandleError):
  """The cache folder cannot be used (unwritable, full, or locked)."""


class ModelFormatError(HubAdapterError, ValueError):
  """A folder is not a model, or one of its files is corrupt or unknown."""


class SignatureError(HubAdapterError, ValueError):
  """A signature, tag set or output key that does not exist was asked for."""


class InputError(HubAdapterError, ValueError):
  """Inputs given to a model do not match its signature."""


class UnknownOpError(BackendUnavailableError, ModelFormatError):
  """A model uses ops that neither TensorFlow nor any library in
  hub_adapter's op-library table registers.

  It is a ``BackendUnavailableError`` (a library may be missing) and a
  ``ModelFormatError`` (the model may simply be broken or too new), so code
  that caught either before keeps working.
  """


class UnsafeModelError(HubAdapterError, PermissionError):
  """``load(..., safe=True)`` found ops that touch files, network or code."""


__all__ = [
    "HubAdapterError", "UnsupportedOperationError", "BackendUnavailableError",
    "HandleError", "ArchiveError", "CacheError", "ModelFormatError",
    "SignatureError", "InputError", "UnsafeModelError", "UnknownOpError",
    "compose", "choices",
]


# Added for the TF1 Hub engine (hub_adapter.tf1): errors that tensorflow_hub
# 0.15 raised as KeyError or TypeError stay catchable as those.
class TagSetError(SignatureError, KeyError):
  """A graph variant (tag set) that the module does not have was asked for."""


class InputTypeError(InputError, TypeError):
  """Inputs have the wrong structure, dtype or shape for a signature."""


class AttachmentNotFoundError(HubAdapterError, KeyError):
  """A required attached message is absent from the module."""


class OutputSelectionError(SignatureError, TypeError):
  """A call asked for the 'default' output of a signature that has none."""


class GraphMismatchError(HubAdapterError, RuntimeError):
  """A graph-mode object does not fit the graph it is used in: another graph
  than its own, or a scope name that is already taken."""


__all__ += ["TagSetError", "InputTypeError", "AttachmentNotFoundError",
            "OutputSelectionError", "GraphMismatchError"]


# Added for Keras 3 backends other than TensorFlow (hub_adapter.keras_layers.
# jax_backend): what the backend cannot run, with the remedy.
class UnsupportedBackendError(HubAdapterError, NotImplementedError):
  """A model cannot run as a Keras layer on the running Keras backend.

  Raised by :class:`hub_adapter.KerasLayer` at construction (or, for
  ``jax.jit``, at the first staged call) with the reason and remedy of the
  limit in :mod:`hub_adapter.backend_support`.

  Attributes:
    backend: The Keras backend (``keras.backend.backend()``).
    limit: The limit hit (a ``backend_support.Limit`` value).
    reason: Why it cannot work.
    remedy: What to do instead.
    handle: The model's handle, if known.
  """


__all__ += ["UnsupportedBackendError"]


# Added for drop-in parity with tensorflow_hub: where tensorflow_hub raises
# ValueError, these stay catchable as ValueError.
class UnsupportedTrainingError(UnsupportedOperationError, ValueError):
  """``KerasLayer(trainable=True)`` on a path that cannot be trained: a TF1
  Hub module in TF2, or a SavedModel signature (tensorflow_hub raises
  ValueError for both).

  Args:
    first: tensorflow_hub's sentence for the case, which leads the message.
    **kwargs: As for :class:`UnsupportedOperationError`.
  """

  def __init__(self, *, first: str = "", **kwargs: Any):
    super().__init__(**kwargs)
    if first:
      self.message = f"{first}\n{self.message}"
      self.args = (self.message,)


class HandleTypeError(HandleError, ValueError):
  """A handle that is not a string or path (tensorflow_hub raises
  ValueError: "Expected a string, got ...")."""


__all__ += ["UnsupportedTrainingError", "HandleTypeError"]


class ArgumentError(HubAdapterError, ValueError):
  """A function was called with an argument it cannot take (tensorflow_hub
  raises ValueError in the same cases)."""


__all__ += ["ArgumentError"]
