"""The support table: the one place that decides what works where.

The table maps every (format, operation, mode) cell to either
:class:`Supported` (naming the backend, by dotted path, that does the work)
or :class:`Unsupported` (with a reason and a remedy a user can act on).
``load()``, the errors, the Keras layer, the Estimator helpers and the CLI
all read it from here; nothing else decides what is supported.
"""
from __future__ import annotations

import dataclasses
import enum
import importlib
import types
from typing import Any, Callable, Mapping, Optional, Tuple, Union

from hub_adapter import errors


class Format(str, enum.Enum):
  """Model formats found on TF Hub."""
  TF1_HUB = "tf1_hub"
  TF2_SAVED_MODEL = "tf2_saved_model"

  @property
  def title(self) -> str:
    return {"tf1_hub": "TF1 Hub", "tf2_saved_model": "TF2 SavedModel"}[self.value]


class Mode(str, enum.Enum):
  """TensorFlow execution modes."""
  TF1_COMPAT = "tf1_compat"
  TF2 = "tf2"

  @property
  def title(self) -> str:
    return {"tf1_compat": "TF1 compat mode", "tf2": "TF2"}[self.value]


class Operation(str, enum.Enum):
  """What a user does with a model."""
  LOAD = "load"
  FINE_TUNE = "fine_tune"
  CREATE = "create"

  @property
  def title(self) -> str:
    return {"load": "load/infer", "fine_tune": "fine-tune",
            "create": "create"}[self.value]


@dataclasses.dataclass(frozen=True)
class Supported:
  """A cell that works.

  Attributes:
    backend: ``"package.module:attribute"`` of the callable doing the work.
    how: A short description of the public API for this cell.
  """
  backend: str
  how: str

  supported = True


@dataclasses.dataclass(frozen=True)
class Unsupported:
  """A cell that the official table closes.

  Attributes:
    reason: Why it cannot work.
    remedy: What to do instead.
    works_when: What does work in this cell all the same, as observed (and
      checked live by ``hub-adapter matrix``); "" when nothing does. The
      official answer stays "not supported": operations outside what this
      names still raise the cell's error.
  """
  reason: str
  remedy: str
  works_when: str = ""

  supported = False


Cell = Union[Supported, Unsupported]
Key = Tuple[Format, Operation, Mode]

_TF2_SAVE_REMEDY = (
    "Create a TF2 SavedModel instead: put the computation in a tf.Module "
    "(or a Keras model) with a @tf.function __call__ and save it with "
    "hub_adapter.save(obj, path) (which calls tf.saved_model.save); it loads "
    "with hub_adapter.load in both TF2 and TF1 compat mode. What "
    "add_signature declared becomes a signature "
    "(tf.saved_model.save(obj, path, signatures={'default': "
    "obj.__call__.get_concrete_function(tf.TensorSpec([None, 8], "
    "tf.float32))})), the {'train'} graph variant a training=True/False "
    "argument of __call__, regularizers the obj.regularization_losses list of "
    "tf.functions, and attach_message data an asset file or a tf.constant "
    "attribute. To write the TF1 Hub format itself, do as with "
    "tensorflow_hub 0.15: create_module_spec(module_fn) (it builds its own "
    "graphs), then hub_adapter.Module(spec) and module.export(path, "
    "session) inside `with tf.compat.v1.Graph().as_default():` with a "
    "tf.compat.v1.Session; or call tf.compat.v1.disable_v2_behavior() at "
    "program start.")

# create_module_spec(module_fn) in the eager program, then Module(spec) and
# Module.export(path, session) inside `with tf.compat.v1.Graph().as_default()`
# (the remedy above spells it out).
_TF1_CREATE_IN_TF2_WORKS_WHEN = (
    "the module is built and exported in a graph, as in tensorflow_hub 0.15")

_TABLE = {
    (Format.TF1_HUB, Operation.LOAD, Mode.TF1_COMPAT): Supported(
        "hub_adapter.tf1.backend:load",
        "hub_adapter.load(handle) or hub_adapter.Module(handle)"),
    (Format.TF1_HUB, Operation.LOAD, Mode.TF2): Supported(
        "hub_adapter.tf2.tf1_signatures:load",
        "hub_adapter.load(handle): the module's signatures through "
        "tf.saved_model.load"),
    (Format.TF1_HUB, Operation.FINE_TUNE, Mode.TF1_COMPAT): Supported(
        "hub_adapter.tf1.backend:load",
        "hub_adapter.load(handle, trainable=True) (train tags picked when the "
        "module has them)"),
    (Format.TF1_HUB, Operation.FINE_TUNE, Mode.TF2): Unsupported(
        "TF2 loads a TF1 Hub module's signatures as frozen functions: its "
        "variables are not exposed for training, and the train graph's "
        "UPDATE_OPS and REGULARIZATION_LOSSES are never run or collected.",
        "Fine-tune it in TF1 compat mode (call "
        "tf.compat.v1.disable_v2_behavior() first) with "
        "hub_adapter.load(handle, trainable=True); or use a TF2 SavedModel "
        "version of the model, e.g. one written by `hub-adapter convert "
        "HANDLE DIR` (hub_adapter.convert), which fine-tunes in TF2; in TF2 "
        "you can still use the module frozen with trainable=False."),
    (Format.TF1_HUB, Operation.CREATE, Mode.TF1_COMPAT): Supported(
        "hub_adapter.tf1.creation:create_module_spec",
        "hub_adapter.create_module_spec(module_fn) then Module.export"),
    (Format.TF1_HUB, Operation.CREATE, Mode.TF2): Unsupported(
        "The TF1 Hub format is built from TF1 graphs (placeholders, "
        "collections, sessions), which do not exist in TF2 eager mode.",
        _TF2_SAVE_REMEDY, works_when=_TF1_CREATE_IN_TF2_WORKS_WHEN),
    (Format.TF2_SAVED_MODEL, Operation.LOAD, Mode.TF1_COMPAT): Supported(
        "hub_adapter.tf2.graph:load",
        "hub_adapter.load(handle), run in a tf.compat.v1.Session"),
    (Format.TF2_SAVED_MODEL, Operation.LOAD, Mode.TF2): Supported(
        "hub_adapter.tf2.eager:load", "hub_adapter.load(handle)"),
    (Format.TF2_SAVED_MODEL, Operation.FINE_TUNE, Mode.TF1_COMPAT): Supported(
        "hub_adapter.tf2.graph:load",
        "hub_adapter.load(handle, trainable=True) in a model_fn or with a "
        "tf.compat.v1 optimizer, or KerasLayer(trainable=True) in tf_keras "
        "Model.fit"),
    (Format.TF2_SAVED_MODEL, Operation.FINE_TUNE, Mode.TF2): Supported(
        "hub_adapter.tf2.eager:load",
        "hub_adapter.load(handle, trainable=True) or "
        "KerasLayer(handle, trainable=True) in Model.fit"),
    (Format.TF2_SAVED_MODEL, Operation.CREATE, Mode.TF1_COMPAT): Supported(
        "hub_adapter.tf2.creation:save",
        "hub_adapter.save(obj, path) (tf.saved_model.save)"),
    (Format.TF2_SAVED_MODEL, Operation.CREATE, Mode.TF2): Supported(
        "hub_adapter.tf2.creation:save",
        "hub_adapter.save(obj, path) (tf.saved_model.save)"),
}

TABLE: Mapping[Key, Cell] = types.MappingProxyType(_TABLE)
"""The support table, read-only: (Format, Operation, Mode) -> Cell."""

OFFICIAL: Mapping[Key, bool] = types.MappingProxyType(
    {key: cell.supported for key, cell in _TABLE.items()})
"""What the official TF Hub documentation says for each cell."""


def _coerce(format, operation, mode) -> Key:
  try:
    return Format(format), Operation(operation), Mode(mode)
  except ValueError as e:
    raise errors.ArgumentError(
        f"Unknown support-table key {(format, operation, mode)!r}: {e}. "
        f"Formats: {[f.value for f in Format]}, operations: "
        f"{[o.value for o in Operation]}, modes: {[m.value for m in Mode]}."
    ) from None


def lookup(format, operation, mode) -> Cell:
  """Returns the cell for (format, operation, mode).

  Args:
    format: A :class:`Format` or its value.
    operation: An :class:`Operation` or its value.
    mode: A :class:`Mode` or its value.

  Returns:
    The :class:`Supported` or :class:`Unsupported` cell.

  Raises:
    ArgumentError: a key is not one of the enum values (a ``ValueError``).
  """
  return TABLE[_coerce(format, operation, mode)]


def require(format, operation, mode, *, handle: Optional[str] = None,
            detail: str = "") -> Supported:
  """Returns the cell if it is supported, else raises its error.

  Args:
    format: The model format.
    operation: The operation asked for.
    mode: The running mode.
    handle: The handle, quoted in the error.
    detail: Extra words for the error's first line.

  Returns:
    The :class:`Supported` cell.

  Raises:
    UnsupportedOperationError: the cell is unsupported; the error carries the
      cell's reason and remedy.
  """
  key = _coerce(format, operation, mode)
  cell = TABLE[key]
  if isinstance(cell, Unsupported):
    raise errors.UnsupportedOperationError(
        format=key[0], operation=key[1], mode=key[2], reason=cell.reason,
        remedy=cell.remedy, handle=handle, detail=detail)
  return cell


@dataclasses.dataclass(frozen=True)
class Limit:
  """A path that an API refuses within a cell, supported or not.

  The table answers per (format, operation, mode); some APIs narrow that
  further (a Keras layer cannot fine-tune through a signature, ``Module``
  needs graph mode). Their refusals are rows here, read by those APIs.
  ``{how}`` and ``{remedy}`` in ``remedy`` stand for the cell's own.

  Attributes:
    format: The model format.
    operation: The operation refused.
    reason: Why it cannot work.
    remedy: What to do instead.
  """
  format: Format
  operation: Operation
  reason: str
  remedy: str


_LIMITS = {
    "keras_signature_fine_tune": Limit(
        Format.TF2_SAVED_MODEL, Operation.FINE_TUNE,
        "A signature is a function traced for inference: it has no "
        "training mode, runs no update ops (batch-norm statistics) and adds "
        "no regularization losses, so fine-tuning through it goes wrong "
        "quietly.",
        "Leave signature=None to fine-tune through the model's __call__ "
        "(reusable SavedModels have one), or keep trainable=False and train "
        "the layers on top."),
    "keras_tf1_object_fine_tune": Limit(
        Format.TF1_HUB, Operation.FINE_TUNE,
        "A TF1 Hub module passed as an object is the TF2 view of its "
        "signatures: frozen functions without update ops or regularization "
        "losses.",
        "Pass the module's handle instead: hub_adapter.KerasLayer(handle, "
        "trainable=True) fine-tunes it in TF1 compat mode."),
    "keras_tf1_trainable_later": Limit(
        Format.TF1_HUB, Operation.FINE_TUNE,
        "A TF1 Hub module is loaded once, for inference or for training: "
        "trainable=False imports the inference graph without the variables' "
        "training state, update ops or regularization losses.",
        "Make the layer with KerasLayer(handle, trainable=True) instead of "
        "setting trainable later."),
    "module_create_eager": Limit(
        Format.TF1_HUB, Operation.CREATE,
        "Module adds the module's variables and ops to a tf.Graph, to be run "
        "(and exported) by a tf.compat.v1.Session; TF2 executes eagerly, "
        "without either.",
        "Build and export it in a graph, as with tensorflow_hub 0.15: `with "
        "tf.compat.v1.Graph().as_default(): module = hub_adapter.Module(spec); "
        "with tf.compat.v1.Session() as session: "
        "session.run(tf.compat.v1.global_variables_initializer()); "
        "module.export(path, session)`. Otherwise: {remedy}"),
    "module_load_eager": Limit(
        Format.TF1_HUB, Operation.LOAD,
        "Module is the TF1 graph API: it adds the module's variables and ops "
        "to a tf.Graph to be run by a tf.compat.v1.Session, and TF2 executes "
        "eagerly, without either.",
        "For inference in TF2 use {how}. For Module itself (trainable=True, "
        "UPDATE_OPS, REGULARIZATION_LOSSES), call "
        "tf.compat.v1.disable_v2_behavior() at program start, or build inside "
        "`with tf.Graph().as_default():`."),
}

LIMITS: Mapping[str, Limit] = types.MappingProxyType(_LIMITS)
"""Refusals of single APIs within a cell, by name."""


def refuse(limit: str, mode, *, handle: Optional[str] = None,
           detail: str = "", error: Optional[type] = None,
           **kwargs: Any) -> None:
  """Raises the error of a :data:`LIMITS` row.

  Args:
    limit: The row's name.
    mode: The running mode.
    handle: The handle, quoted in the error.
    detail: Extra words for the error's first line.
    error: The class to raise, a subclass of
      ``UnsupportedOperationError`` (the default).
    **kwargs: More arguments of ``error``.

  Raises:
    UnsupportedOperationError: always (or ``error``).
  """
  row = LIMITS[limit]
  cell = lookup(row.format, row.operation, mode)
  remedy = row.remedy.replace("{how}", getattr(cell, "how", "")).replace(
      "{remedy}", getattr(cell, "remedy", ""))
  raise (error or errors.UnsupportedOperationError)(
      format=row.format, mode=Mode(mode), operation=row.operation,
      reason=row.reason, remedy=remedy, handle=handle, detail=detail,
      **kwargs)


def backend(cell: Supported) -> Callable[..., Any]:
  """Imports the callable a supported cell names.

  Args:
    cell: A supported cell.

  Returns:
    The backend callable.

  Raises:
    BackendUnavailableError: the backend module cannot be imported.
  """
  module_name, _, attribute = cell.backend.partition(":")
  try:
    module = importlib.import_module(module_name)
  except ImportError as e:
    raise errors.BackendUnavailableError(errors.compose(
        f"The backend {cell.backend!r} for '{cell.how}' cannot be imported.",
        str(e),
        "Install hub-adapter with its dependencies (pip install hub-adapter) "
        "in a supported stack: TF 2.21 with Keras 3 or tf_keras, or TF 2.15 "
        "with Keras 2.")) from e
  return getattr(module, attribute)
