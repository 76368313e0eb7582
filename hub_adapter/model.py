"""The contract between ``load()`` and its backends.

``load()`` validates a request into a :class:`LoadRequest` and hands it to the
backend that the support table names. Every backend returns a subclass of
:class:`Model`, so users see one object whatever the format and mode.
"""
from __future__ import annotations

import dataclasses
from typing import Any, FrozenSet, List, Mapping, Optional

from hub_adapter.support import Format, Mode, Operation


@dataclasses.dataclass(frozen=True)
class LoadRequest:
  """A validated request for a backend.

  Attributes:
    handle: The handle as the user gave it.
    path: The local model folder it resolved to.
    info: The ``ModelInfo`` read from the folder's protos.
    mode: The mode the model will run in.
    operation: ``Operation.LOAD`` or ``Operation.FINE_TUNE``.
    signature: The picked signature; None means the root ``__call__`` of a
      TF2 SavedModel.
    tags: The tag set to load (TF1 Hub modules: the inference tags; the
      training tags are ``train_tags``).
    train_tags: The tag set used for ``training=True``, or None.
    output_key: The output to return from a dict-valued signature, or None.
    as_dict: Whether to return all outputs as a dict (None: backend default).
    options: ``tf.saved_model.LoadOptions`` or None.
  """
  handle: str
  path: str
  info: Any
  mode: Mode
  operation: Operation
  signature: Optional[str]
  tags: Optional[FrozenSet[str]]
  train_tags: Optional[FrozenSet[str]] = None
  output_key: Optional[str] = None
  as_dict: Optional[bool] = None
  options: Any = None

  @property
  def trainable(self) -> bool:
    return self.operation is Operation.FINE_TUNE

  @property
  def format(self) -> Format:
    return self.info.format


class Model:
  """A loaded TF Hub model, whatever its format and the running mode.

  Call it like ``hub.load``'s result or a Keras layer: ``model(inputs)`` or
  ``model(inputs, training=True)``. For a TF1 Hub module this applies the
  picked signature (the train graph with ``training=True`` where the module
  has one); for a TF2 SavedModel it calls ``__call__`` (passing ``training``
  where the model accepts it) or the picked signature.

  Attribute access that the wrapper does not define falls through to
  :attr:`raw`, the object the backend loaded, so code written against the
  result of ``hub.load`` keeps working.

  Subclasses implement :meth:`__call__` and the properties that raise
  ``NotImplementedError`` here.
  """

  def __init__(self, request: LoadRequest, raw: Any):
    self._request = request
    self._raw = raw

  # Facts about the request -------------------------------------------------
  @property
  def handle(self) -> str:
    return self._request.handle

  @property
  def path(self) -> str:
    return self._request.path

  @property
  def format(self) -> Format:
    return self._request.format

  @property
  def mode(self) -> Mode:
    return self._request.mode

  @property
  def signature(self) -> Optional[str]:
    """The picked signature; None means the root ``__call__``."""
    return self._request.signature

  @property
  def tags(self) -> Optional[FrozenSet[str]]:
    return self._request.tags

  @property
  def trainable(self) -> bool:
    return self._request.trainable

  @property
  def info(self) -> Any:
    """The ``ModelInfo`` read from the model's protos."""
    return self._request.info

  @property
  def raw(self) -> Any:
    """The underlying object (``tf.saved_model.load`` result, TF1 Module)."""
    return self._raw

  # Backend-specific --------------------------------------------------------
  def __call__(self, inputs=None, training: Optional[bool] = None, **kwargs):
    raise NotImplementedError

  @property
  def signatures(self) -> Mapping[str, Any]:
    raise NotImplementedError

  @property
  def variables(self) -> List[Any]:
    raise NotImplementedError

  @property
  def trainable_variables(self) -> List[Any]:
    raise NotImplementedError

  @property
  def regularization_losses(self) -> List[Any]:
    raise NotImplementedError

  @property
  def update_ops(self) -> List[Any]:
    """Update ops added by calls with ``training=True`` (graph mode only)."""
    return []

  def layer_trainable_variables(self) -> List[Any]:
    """The variables a Keras layer over this model counts as trainable.

    Returns:
      ``trainable_variables`` when loaded for training; otherwise those the
      layer may train if it is made trainable later: none, unless the
      backend can train a model loaded frozen.
    """
    return list(self.trainable_variables) if self.trainable else []

  def keras_training_limit(self, trainable_from_start: bool) -> Optional[str]:
    """The :data:`hub_adapter.support.LIMITS` row that refuses training this
    model in a Keras layer, or None when the layer may train it.

    The layer checks the model's fine-tune cell first; this narrows a cell
    that allows it.

    Args:
      trainable_from_start: Whether the layer was made with
        ``trainable=True`` (rather than set trainable later).

    Returns:
      A row name, or None.
    """
    del trainable_from_start  # A model trains as its cell says by default.
    return None

  def saveable_state(self) -> Any:
    """The trackable that holds this model's state when a Keras model or a
    ``tf.Module`` holding it is saved.

    Returns:
      :attr:`raw` by default.
    """
    return self._raw

  def __getattr__(self, name: str) -> Any:
    # "_self_*": the state of TensorFlow's trackable base classes (see
    # hub_adapter.tf2.trackable), which must never be the wrapped object's.
    if (name.startswith(("__", "_self_"))
        or name in ("_raw", "_request", "_hub_saveable")):
      raise AttributeError(name)
    return getattr(self._raw, name)

  def __repr__(self) -> str:
    sig = self.signature if self.signature is not None else "__call__"
    return (f"<hub_adapter.Model {self.handle!r} format={self.format.value} "
            f"mode={self.mode.value} signature={sig} "
            f"trainable={self.trainable}>")
