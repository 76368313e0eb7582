"""``KerasLayer(obj)``: a callable object as the handle, as tensorflow_hub has it.

``tensorflow_hub.KerasLayer`` accepts, instead of a handle string, an object
that is already loaded: the result of ``hub.load`` or
``tf.saved_model.load``, a ``tf.Module`` with a ``@tf.function __call__``, or
a plain ``tf.function``. :func:`wrap` turns such an object into the
:class:`hub_adapter.Model` interface that :class:`hub_adapter.KerasLayer`
drives, with tensorflow_hub's rules:

- the object's ``__call__`` is used, or with ``signature=`` its
  ``signatures[signature]``;
- its variables are the layer's weights (``trainable_variables`` trainable,
  the rest not; an object without those attributes, such as a reloaded
  ``tf.Module``, has its variables found in its object graph); its
  ``regularization_losses`` are the layer's losses;
- it is a TF1 Hub module when it carries ``_is_hub_module_v1 = True``
  (``hub.load`` and ``hub_adapter.load`` mark their results so); such a
  module is used through a signature, ``default`` unless named.

A ``hub_adapter.Model`` (``hub_adapter.load``'s result) is taken by the
object it loaded. Such a layer has no config to save (there is no handle to
reload from), exactly as in tensorflow_hub.

This module imports TensorFlow; only ``KerasLayer`` imports it, for callable
handles.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf

from hub_adapter import errors
from hub_adapter import runtime
from hub_adapter import signatures as signatures_lib
from hub_adapter.model import LoadRequest, Model
from hub_adapter.support import Format, Operation
from hub_adapter.tf2 import common
from hub_adapter.tf2 import trackable


@dataclasses.dataclass(frozen=True)
class _Spec:
  """What KerasLayer reads of one signature input or output."""
  dtype: Any
  shape: Any


@dataclasses.dataclass(frozen=True)
class _Signature:
  inputs: Dict[str, _Spec]
  outputs: Dict[str, _Spec]


class _CallableInfo:
  """The parts of a ``ModelInfo`` KerasLayer reads, from a live object."""

  def __init__(self, obj: Any, fmt: Format):
    self.format = fmt
    self._obj = obj
    self.call_accepts_training = None

  def signatures_for(self, tags: Any = None) -> Dict[str, _Signature]:
    del tags
    found = {}
    for name, function in dict(getattr(self._obj, "signatures", None)
                               or {}).items():
      kwargs = function.structured_input_signature[1]
      outputs = function.structured_outputs
      found[name] = _Signature(
          inputs={k: _Spec(v.dtype, v.shape) for k, v in kwargs.items()},
          outputs=({k: _Spec(v.dtype, v.shape) for k, v in outputs.items()}
                   if isinstance(outputs, Mapping) else {}))
    return found


def _describe(obj: Any) -> str:
  return f"<{type(obj).__module__}.{type(obj).__qualname__} object>"


def _accepts_training(function: Any) -> bool:
  """Whether a callable takes ``training`` (tensorflow_hub's test)."""
  concrete = getattr(function, "concrete_functions", None)
  if concrete:
    return any("training" in (f.structured_input_signature[1] or {})
               or "training" in getattr(f, "_arg_keywords", ())
               for f in concrete) or _argspec_has_training(function)
  return _argspec_has_training(function)


def _argspec_has_training(function: Any) -> bool:
  target = getattr(function, "python_function", function)
  try:
    spec = inspect.getfullargspec(target)
  except TypeError:
    return False
  return "training" in spec.args or "training" in spec.kwonlyargs


class CallableModel(trackable.TrackableModel):
  """A live object driven like a loaded :class:`hub_adapter.Model`.

  Attributes: as :class:`hub_adapter.Model`; ``raw`` is the object.
  """

  def __init__(self, request: LoadRequest, raw: Any, fmt: Format):
    super().__init__(request, raw)
    self._hub_format = fmt
    call = (raw.signatures[request.signature]
            if request.signature is not None else raw)
    self._hub_call = call
    self._hub_accepts_training = (request.signature is None
                                  and _accepts_training(raw))

  @property
  def format(self) -> Format:
    return self._hub_format

  def keras_training_limit(self, trainable_from_start: bool) -> Optional[str]:
    """A TF1 Hub module passed as an object never trains in a layer; a TF2
    object does, except through a signature (see
    :meth:`hub_adapter.Model.keras_training_limit`)."""
    del trainable_from_start
    if self._hub_format is Format.TF1_HUB:
      return "keras_tf1_object_fine_tune"
    return ("keras_signature_fine_tune" if self.signature is not None
            else None)

  def saveable_state(self) -> Any:
    """The object itself; a TF1 Hub module's through
    :func:`hub_adapter.tf2.trackable.tf1_module_holder`."""
    if self._hub_format is Format.TF1_HUB:
      return trackable.tf1_module_holder(self)
    return self._raw

  def layer_trainable_variables(self) -> List[Any]:
    """As the backend of its format would answer (a TF2 object offers the
    variables it marks trainable also when the layer starts frozen).

    Returns:
      A list of variables.
    """
    if self._hub_format is Format.TF2_SAVED_MODEL:
      return common.saved_model_layer_trainable_variables(self)
    return super().layer_trainable_variables()

  @property
  def signatures(self) -> Mapping[str, Any]:
    return getattr(self._raw, "signatures", {})

  @property
  def variables(self) -> List[Any]:
    """Its ``variables``, or those found in its object graph."""
    return trackable.live(common.list_variables(self._raw))

  @property
  def trainable_variables(self) -> List[Any]:
    """Its ``trainable_variables`` (or those it marks trainable), when the
    layer is trainable."""
    if not self.trainable:
      return []
    return trackable.live(common.list_trainable_variables(self._raw))

  @property
  def regularization_losses(self) -> List[Any]:
    losses = list(getattr(self._raw, "regularization_losses", None) or [])
    for loss in losses:
      if not callable(loss):
        raise errors.InputError(errors.compose(
            "hub.KerasLayer(obj) expects obj.regularization_losses to be an "
            "iterable of callables, each returning a scalar loss term.",
            f"One of them is a {type(loss).__name__}.",
            "Wrap each loss in a zero-argument tf.function."),
            handle=self.handle)
    return losses

  def __call__(self, inputs=None, training: Optional[bool] = None, **kwargs):
    request = self._request
    if request.signature is not None:
      feed = dict(kwargs)
      if isinstance(inputs, Mapping):
        feed.update(inputs)
      elif inputs is not None:
        names = [n for n in self.info.signatures_for()[request.signature]
                 .inputs if n not in feed]
        if len(names) != 1:
          raise errors.InputError(errors.compose(
              f"Signature {request.signature!r} has {len(names)} inputs "
              "left to feed; a bare value fits only one.",
              f"Its inputs: {errors.choices(names)}.",
              "Pass a dict keyed by input name."), handle=self.handle)
        feed[names[0]] = inputs
      outputs = self._hub_call(**feed)
      return signatures_lib.select_output(outputs, request.output_key,
                                          request.as_dict)
    call_kwargs = dict(kwargs)
    if self._hub_accepts_training and training is not None:
      call_kwargs["training"] = training
    args = [] if inputs is None else [inputs]
    if tf.is_tensor(call_kwargs.get("training")):
      flag = call_kwargs.pop("training")
      result = tf.cond(flag,
                       lambda: self._raw(*args, training=True, **call_kwargs),
                       lambda: self._raw(*args, training=False, **call_kwargs))
    else:
      result = self._raw(*args, **call_kwargs)
    key = request.output_key
    if key is not None:
      if not isinstance(result, Mapping):
        raise errors.SignatureError(errors.compose(
            "Specifying `output_key` is forbidden if output type "
            f"{type(result)} is not a dict.",
            f"The object's __call__ returned a {type(result).__name__}.",
            "Leave output_key=None."), handle=self.handle, output_key=key)
      if key not in result:
        raise errors.SignatureError(errors.compose(
            f"KerasLayer output does not contain the output key {key} "
            f"(available: {list(result)}).", "",
            "Pass output_key= one of those."), handle=self.handle,
            output_key=key)
      result = result[key]
    return result


def wrap(obj: Any, trainable: bool, *, signature: Optional[str],
         output_key: Optional[str], as_dict: Optional[bool], tags: Any,
         load_options: Any) -> CallableModel:
  """Wraps a callable handle for :class:`hub_adapter.KerasLayer`.

  Args:
    obj: The object (see the module doc); a ``hub_adapter.Model`` is taken
      by ``obj.raw``.
    trainable: The layer's ``trainable``.
    signature: The signature to call, or None for ``__call__`` (a TF1 Hub
      module: None means ``default``).
    output_key: The output to pick.
    as_dict: ``signature_outputs_as_dict``.
    tags: Must be None (the object is already loaded).
    load_options: Must be None.

  Returns:
    A :class:`CallableModel`.

  Raises:
    InputError: ``tags`` or ``load_options`` were given, or the object is
      not callable and has no signature to call.
    SignatureError: the signature does not exist.
  """
  for name, value in (("tags", tags), ("load_options", load_options)):
    if value is not None:
      raise errors.InputError(errors.compose(
          f"Passing a callable handle is mutually exclusive with setting "
          f"{name}.",
          "The object is loaded already, so there is nothing to load with "
          f"{name}.", f"Drop {name}=, or pass the model's handle string.",
          {"handle": _describe(obj)}))
  if isinstance(obj, Model):
    obj = obj.raw
  fmt = (Format.TF1_HUB if getattr(obj, "_is_hub_module_v1", False)
         else Format.TF2_SAVED_MODEL)
  if fmt is Format.TF1_HUB and signature is None:
    signature = "default"
  available = dict(getattr(obj, "signatures", None) or {})
  if signature is not None and signature not in available:
    raise errors.SignatureError(errors.compose(
        f"Unknown signature {signature} in {_describe(obj)} (available "
        f"signatures: {errors.choices(available)}).", "",
        "Pass signature= one of those.",
        {"handle": _describe(obj)}), handle=_describe(obj),
        signature=signature)
  if signature is None and not callable(obj):
    raise errors.InputError(errors.compose(
        "Loaded object is not callable and has no signatures."
        if not available else
        "Signature name has to be specified for non-callable saved models "
        "(if not legacy TF1 Hub format).",
        f"{_describe(obj)} has no __call__.",
        f"Pass signature= one of {errors.choices(available)}."
        if available else "Pass a callable object or a model handle.",
        {"handle": _describe(obj)}))
  info = _CallableInfo(obj, fmt)
  request = LoadRequest(
      handle=_describe(obj), path="", info=info, mode=runtime.current_mode(),
      operation=Operation.FINE_TUNE if trainable else Operation.LOAD,
      signature=signature, tags=None, output_key=output_key,
      as_dict=as_dict)
  return CallableModel(request, obj, fmt)


__all__ = ["CallableModel", "wrap"]
