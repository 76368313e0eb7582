"""``KerasLayer``: a TF Hub model as a layer of whichever Keras is running.

``hub_adapter.KerasLayer(handle, ...)`` takes the arguments of
``tensorflow_hub.KerasLayer`` and returns a real Keras layer of the flavour
that runs right now (see :func:`hub_adapter.runtime.keras_flavour`):

- Keras 3 (TF >= 2.16 in TF2 mode): a ``keras.layers.Layer``;
- Keras 2: a ``tf_keras`` layer (TF 2.21 with ``TF_USE_LEGACY_KERAS=1``, or
  any Keras work in TF1 compat mode), or TF 2.15's ``tf.keras`` layer.

How: ``KerasLayer`` is a mixin holding everything the flavours share. Its
``__new__`` picks, when called on ``KerasLayer`` itself, the concrete class
for the running flavour (built once, lazily, by
:mod:`hub_adapter.keras_layers.flavours` as ``(flavour behaviour, KerasLayer,
<that Keras>.layers.Layer)``) and returns an instance of it. So
``isinstance(layer, hub_adapter.KerasLayer)`` and ``isinstance(layer,
keras.layers.Layer)`` both hold, and the flavour is decided when the layer
is made (not when ``hub_adapter`` is imported), which is what lets one
process switch to TF1 compat mode after import.

Importing this module registers the running flavour's class for
deserialization (as ``"hub_adapter>KerasLayer"``); the other flavour's class
is registered when it is first built. Models saved with
``tensorflow_hub.KerasLayer`` load with ``custom_objects={"KerasLayer":
hub_adapter.KerasLayer}``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional

from hub_adapter import errors
from hub_adapter import support
from hub_adapter.keras_layers import shapes
from hub_adapter.support import Format, Operation


class KerasLayer:
  """Wraps a TF Hub model (TF2 SavedModel or TF1 Hub module) as a Keras layer.

  The model is loaded with :func:`hub_adapter.load`, so handles, signature
  and output picking, and the support-table checks are exactly those of
  ``load()``. The layer then calls it: the root ``__call__`` of a TF2
  SavedModel (with ``training`` where it takes it) or the picked signature
  (TF1 Hub modules always go through a signature: ``default`` unless asked
  otherwise, else the only one).

  Weights. The layer's weights *are* the model's own ``tf.Variable`` s, not
  copies: Keras' optimizer updates the variables the model's functions read,
  and saving the Keras model saves their values. Those the model marks
  trainable are the layer's trainable weights while ``layer.trainable`` is
  True; the others (batch-norm moving statistics) are non-trainable.

  Training. As for ``keras.layers.BatchNormalization``, the model runs in
  training mode only when the layer is trainable *and* the surrounding model
  trains (``Model.fit``): dropout is active and moving statistics move then,
  and never in ``predict``/``evaluate`` or when frozen. ``layer.trainable``
  may be changed after construction, as with any Keras layer; the change is
  checked at the next call (a TF1 Hub module cannot be made trainable in TF2,
  which the support table refuses with ``UnsupportedOperationError``).

  Losses. While the layer is trainable, the model's regularization losses
  are the layer's losses (``model.losses``), so ``fit`` minimizes them too.
  Under Keras 3 losses are per call, as Keras 3 does for every layer: they
  appear in ``model.losses`` after a forward pass. Under Keras 2 they are
  callables evaluated whenever ``model.losses`` is read.

  Saving. ``get_config``/``from_config`` round-trip every argument except
  ``load_options`` (which describe the loading machine, as in
  tensorflow_hub). Under Keras' safe mode (the default of
  ``keras.models.load_model`` for ``.keras`` files) the model's graphs are
  first scanned as ``load(..., safe=True)`` does, and models that read or
  write files (beyond their own variables and vocabulary assets), use the
  network or run host code are refused with ``UnsafeModelError``: load
  those with ``safe_mode=False`` if you trust them. Unlike Keras'
  ``TFSMLayer``, ordinary models need no ``safe_mode=False``.

  Args:
    handle: A model folder, ``.tar.gz`` archive or model URL/handle (see
      :func:`hub_adapter.resolve`); a string (or path) so that the layer's
      config can be saved. As in tensorflow_hub, it may also be a callable
      object that is loaded already (``hub.load``'s or ``hub_adapter.load``'s
      result, a ``tf.Module`` with a ``@tf.function __call__``); such a
      layer has no config (see :mod:`hub_adapter.keras_layers.callables`).
    trainable: Whether the model's trainable variables are trained. Raises
      ``UnsupportedOperationError`` right here where the support table
      refuses fine-tuning (TF1 Hub modules in TF2).
    arguments: A dict of extra keyword inputs for every call, e.g. a TF1
      signature's hyper-parameter inputs (``{"batch_norm_momentum": 0.99}``)
      or extra ``__call__`` keywords. Must be JSON-serializable for saving.
    tags: The graph variant (tag set) to load; default as in ``load()``.
    signature: The signature to call; default as in ``load()``.
    signature_outputs_as_dict: True to return all of a signature's outputs
      as a dict.
    output_key: The output to return from a dict of outputs.
    output_shape: The shape of each output without the batch dimension (one
      shape, or a nest that mirrors the outputs), for models whose functions
      lose static shapes; also answers ``compute_output_shape``.
    load_options: ``tf.saved_model.LoadOptions``; by default ``load()``
      picks what a ``tf.distribute`` strategy in scope needs.
    **kwargs: Keras ``Layer`` arguments (``name``, ``dtype``,
      ``input_shape``, ...).

  Raises:
    UnsupportedTrainingError: ``trainable=True`` for a TF1 Hub module where
      the support table refuses fine-tuning (TF2), or for a TF2
      SavedModel's signature: an ``UnsupportedOperationError`` that is also
      the ``ValueError`` tensorflow_hub raises, with its sentence first.
    UnsupportedOperationError: the support table refuses the operation.
    SignatureError: the signature, tags or output key do not exist, or
      ``output_key``/``signature_outputs_as_dict`` break tensorflow_hub's
      rules (its sentence first).
    HandleError, ModelFormatError: the handle cannot be used.
    InputError: ``handle``, ``arguments`` or ``output_shape`` is malformed,
      or ``tags``/``load_options`` come with a callable handle.
  """

  # -- construction -----------------------------------------------------------
  def __new__(cls, *args, **kwargs):
    if cls is KerasLayer:
      from hub_adapter.keras_layers import flavours  # pylint: disable=g-import-not-at-top
      concrete = flavours.layer_class()
      return concrete.__new__(concrete, *args, **kwargs)
    return super().__new__(cls, *args, **kwargs)

  def __init__(self, handle, trainable=False, arguments=None, *, tags=None,
               signature=None, signature_outputs_as_dict=None,
               output_key=None, output_shape=None, load_options=None,
               **kwargs):
    if _is_callable_handle(handle):
      # An object loaded already (hub.load's result, a tf.Module, ...).
      from hub_adapter.keras_layers import callables  # pylint: disable=g-import-not-at-top
      arguments = _check_arguments(arguments, repr(handle))
      output_shape = shapes.normalize(output_shape)
      _check_output_rules(
          bool(getattr(handle, "_is_hub_module_v1", False)), signature,
          signature_outputs_as_dict, output_key)
      model = callables.wrap(
          handle, bool(trainable), signature=signature,
          output_key=output_key, as_dict=signature_outputs_as_dict,
          tags=tags, load_options=load_options)
    else:
      handle = _check_handle(handle)
      arguments = _check_arguments(arguments, handle)
      output_shape = shapes.normalize(output_shape)
      if signature_outputs_as_dict or (signature is not None
                                       and output_key is None):
        _check_output_rules(_is_tf1_hub(handle), signature,
                            signature_outputs_as_dict, output_key)
      try:
        model = _load(handle, bool(trainable), signature=signature,
                      tags=tags, output_key=output_key,
                      as_dict=signature_outputs_as_dict,
                      options=load_options)
      except errors.UnsupportedOperationError as e:
        if (e.operation is not Operation.FINE_TUNE
            or e.format is not Format.TF1_HUB):
          raise
        raise errors.UnsupportedTrainingError(
            format=e.format, mode=e.mode, operation=e.operation,
            reason=e.reason, remedy=e.remedy, handle=handle,
            first=_TF1_TRAINING_SENTENCE) from e
      except errors.SignatureError as e:
        first = _call_output_key_sentence(e, signature, output_key)
        if first is None:
          raise
        raise errors.SignatureError(f"{first}\n{e.message}",
                                    **e.context) from e
    if trainable:
      _refuse_untrainable(model, handle, trainable_from_start=True)
    super().__init__(trainable=bool(trainable), **kwargs)
    # Plain attributes, kept out of Keras/TF attribute tracking so that the
    # config stays JSON and the wrapper is never mistaken for a trackable.
    for name, value in (
        ("_hub_model", model), ("_hub_handle", handle),
        ("_hub_arguments", arguments), ("_hub_output_shape", output_shape),
        ("_hub_tags", _tags_config(tags)),
        ("_hub_signature", signature),
        ("_hub_outputs_as_dict", signature_outputs_as_dict),
        ("_hub_output_key", output_key), ("_hub_load_options", load_options),
        ("_hub_constructed_trainable", bool(trainable))):
      object.__setattr__(self, name, value)
    # Tracked: saving the Keras model as a SavedModel (tf_keras, or Keras 3
    # model.export()) then keeps the model's functions, tables and assets.
    self._hub_resolved = _saveable(model)
    trainable_vars, other_vars = _split_variables(model)
    self._hub_track_variables(trainable_vars, other_vars)
    self._hub_init_losses(list(model.regularization_losses))
    self.built = True

  # -- flavour hooks (implemented by hub_adapter.keras_layers.*) -------------
  def _hub_track_variables(self, trainable_vars: List[Any],
                           other_vars: List[Any]) -> None:
    raise NotImplementedError

  def _hub_init_losses(self, losses: List[Any]) -> None:
    raise NotImplementedError

  def _hub_training_flag(self, training: Any) -> Any:
    raise NotImplementedError

  def _hub_after_call(self, training: Any) -> None:
    raise NotImplementedError

  # -- calling ----------------------------------------------------------------
  def __call__(self, *args, **kwargs):
    # Checked here too, before Keras 3 re-wraps exceptions raised in call().
    self._hub_check_trainability()
    return super().__call__(*args, **kwargs)

  def call(self, inputs, training=None):
    self._hub_check_trainability()
    flag = self._hub_training_flag(training)
    result = self._hub_forward(inputs, flag)
    self._hub_after_call(flag)
    return result

  def _hub_forward(self, inputs: Any, training: Any) -> Any:
    """Applies the model (no Keras bookkeeping); also used for shape specs."""
    model = self._hub_model
    arguments = dict(self._hub_arguments)
    if model.signature is None:
      result = model(inputs, training=training, **arguments)
    else:
      result = model(self._hub_signature_feed(inputs, arguments),
                     training=training)
    if self._hub_output_shape is not None:
      result = _apply_output_shape(result, self._hub_output_shape)
    return result

  def _hub_signature_feed(self, inputs: Any, arguments: Dict[str, Any]
                          ) -> Any:
    """A signature's inputs as one dict: ``arguments`` plus what was passed.

    A bare tensor goes to the one signature input that ``arguments`` leaves
    open; dict inputs are merged with ``arguments``.
    """
    if not arguments:
      return inputs
    if isinstance(inputs, Mapping):
      return {**arguments, **inputs}
    model = self._hub_model
    names = model.info.signatures_for(model.tags)[model.signature].inputs
    open_names = [n for n in names if n not in arguments]
    if len(open_names) != 1:
      raise errors.InputError(errors.compose(
          f"KerasLayer({self._hub_handle!r}) got one bare input, but "
          f"signature {model.signature!r} has {len(open_names)} inputs that "
          f"arguments= does not give: {errors.choices(open_names)}.",
          f"arguments= gives {errors.choices(arguments)}.",
          "Call the layer with a dict keyed by input name."),
          handle=self._hub_handle)
    return {**arguments, open_names[0]: inputs}

  def _hub_check_trainability(self) -> None:
    """Refuses training that the model's format and mode cannot do, and
    logs (once) a trainable layer without trainable weights.

    Checked at call time because ``trainable`` may change after
    construction.

    Raises:
      UnsupportedTrainingError: ``trainable`` was set to True on a layer
        that calls a TF1 Hub module made with ``trainable=False``, or that
        calls a TF2 SavedModel's signature (a ValueError, as in
        tensorflow_hub).
    """
    if not self.trainable:
      return
    _refuse_untrainable(self._hub_model, self._hub_handle,
                        trainable_from_start=self._hub_constructed_trainable)
    self._hub_log_if_nothing_to_train()

  def _hub_log_if_nothing_to_train(self) -> None:
    """Logs an error, once per layer, when a trainable layer has no
    trainable weights (as tensorflow_hub does)."""
    if self.trainable_weights or getattr(self, "_hub_logged_no_weights",
                                         False):
      return
    object.__setattr__(self, "_hub_logged_no_weights", True)
    from absl import logging  # pylint: disable=g-import-not-at-top
    logging.error(
        "hub.KerasLayer is trainable but has zero trainable weights. "
        "hub_adapter: the model %s marks none of its variables trainable, "
        "so training leaves it unchanged.", _handle_text(self._hub_handle))

  # -- shapes -----------------------------------------------------------------
  def compute_output_shape(self, input_shape):
    """The output shape(s) for ``input_shape``.

    From ``output_shape`` when it was given (with the batch dimension of the
    first input); otherwise by tracing the model on inputs of that shape.
    """
    if self._hub_output_shape is not None:
      nest = shapes.with_batch(self._hub_output_shape,
                               shapes.first_batch_dim(input_shape))
      return self._hub_shape_result(nest)
    return self._hub_infer_output_shape(input_shape)

  def _hub_shape_result(self, nest: Any) -> Any:
    return nest

  def _hub_infer_output_shape(self, input_shape: Any) -> Any:
    raise NotImplementedError

  @property
  def _output_shape(self):
    """``output_shape`` as given (normalized); absent when not given.

    tensorflow_hub keeps ``output_shape`` under this private name, and code
    written for it (its own tests included) reads it there.
    """
    if self._hub_output_shape is None:
      raise AttributeError("_output_shape")
    return self._hub_output_shape

  # -- config -----------------------------------------------------------------
  def get_config(self):
    """The layer's config: Keras' base config plus the constructor's
    arguments (except ``load_options``).

    Raises:
      NotImplementedError: the layer was made from a callable object rather
        than a handle string (there is nothing to reload it from), as in
        tensorflow_hub.
    """
    if not isinstance(self._hub_handle, str):
      raise NotImplementedError(
          "Can only generate a valid config for `hub.KerasLayer(handle, ...)`"
          " that uses a string `handle`.\n\nGot `type(handle)`: "
          f"{type(self._hub_handle)}. hub_adapter: make the layer from the "
          "model's handle (folder, archive or URL) to save it with its "
          "config.")
    config = super().get_config()
    config.update({
        "handle": self._hub_handle,
        "arguments": dict(self._hub_arguments) or None,
        "tags": self._hub_tags,
        "signature": self._hub_signature,
        "signature_outputs_as_dict": self._hub_outputs_as_dict,
        "output_key": self._hub_output_key,
        "output_shape": shapes.to_config(self._hub_output_shape),
    })
    return config

  @classmethod
  def from_config(cls, config, *args, **kwargs):
    """Makes the layer from :meth:`get_config`'s dict.

    On ``hub_adapter.KerasLayer`` itself (e.g. through ``custom_objects``
    naming it), dispatches to the running flavour's class. Inside Keras'
    safe-mode deserialization the model is loaded with ``safe=True``.
    """
    if cls is KerasLayer:
      from hub_adapter.keras_layers import flavours  # pylint: disable=g-import-not-at-top
      return flavours.layer_class().from_config(config, *args, **kwargs)
    if cls._hub_keras_safe_mode():
      # Before construction: Keras would re-wrap an error from __init__.
      _refuse_if_unsafe(config.get("handle"))
    return super().from_config(config, *args, **kwargs)

  @classmethod
  def _hub_keras_safe_mode(cls) -> bool:
    return False

  # -- introspection ----------------------------------------------------------
  @property
  def handle(self) -> Any:
    """The handle the layer was made from (a string, or the callable
    object it was given)."""
    return self._hub_handle

  @property
  def model(self) -> Any:
    """The :class:`hub_adapter.Model` that ``load()`` returned."""
    return self._hub_model

  @property
  def resolved_object(self) -> Any:
    """The object ``tf.saved_model.load`` returned (as in tensorflow_hub)."""
    return self._hub_model.raw


# -- helpers -----------------------------------------------------------------

# tensorflow_hub's sentences, which code and users match on; hub_adapter's
# reason and remedy follow them.
_TF1_TRAINING_SENTENCE = ("Setting hub.KerasLayer.trainable = True is "
                          "unsupported when loading from the TF1 Hub format.")
_SIGNATURE_TRAINING_SENTENCE = ("Setting hub.KerasLayer.trainable = True is "
                                "unsupported when calling a SavedModel "
                                "signature.")
# tensorflow_hub's sentence for each LIMITS row that refuses training.
_TRAINING_SENTENCES = {
    "keras_signature_fine_tune": _SIGNATURE_TRAINING_SENTENCE,
    "keras_tf1_object_fine_tune": _TF1_TRAINING_SENTENCE,
    "keras_tf1_trainable_later": _TF1_TRAINING_SENTENCE,
}
_OUTPUTS_SENTENCE = ("When using a signature, either output_key or "
                     "signature_outputs_as_dict=True should be set.")
_AS_DICT_SENTENCE = ("signature_outputs_as_dict is only valid if specifying "
                     "a signature (or using a legacy TF1 Hub format).")


def _is_callable_handle(handle: Any) -> bool:
  return (callable(handle) or hasattr(handle, "signatures")) and not (
      isinstance(handle, (str, bytes, os.PathLike)))


def _handle_text(handle: Any) -> str:
  return handle if isinstance(handle, str) else (
      f"<{type(handle).__module__}.{type(handle).__qualname__} object>")


def _is_tf1_hub(handle: str) -> bool:
  """Whether a handle is a TF1 Hub module (read from its protos; the same
  resolution and inspection ``load()`` does next, which reuses them)."""
  from hub_adapter import preflight  # pylint: disable=g-import-not-at-top
  _, info = preflight.open_model(handle, check=False)  # load() checks.
  return info.format is Format.TF1_HUB


def _check_output_rules(tf1_hub: bool, signature: Any, as_dict: Any,
                        output_key: Any) -> None:
  """tensorflow_hub's rules for signature outputs.

  A signature's outputs are a dict: with a signature (always, for a TF1 Hub
  module, whose signature defaults to ``default`` and output to
  ``default``), exactly one of ``output_key`` and
  ``signature_outputs_as_dict=True`` says what to return; without one,
  ``signature_outputs_as_dict`` has no meaning.

  Raises:
    SignatureError: the rule is broken (a ValueError, as in tensorflow_hub).
  """
  if tf1_hub:
    signature = signature or "default"
    if not as_dict:
      output_key = output_key or "default"
  if signature and (output_key is not None) == bool(as_dict):
    raise errors.SignatureError(errors.compose(
        _OUTPUTS_SENTENCE,
        f"Got output_key={output_key!r} and signature_outputs_as_dict="
        f"{as_dict!r} for signature {signature!r}: a signature returns a dict "
        "of outputs, and the layer must return one of them or all.",
        "Pass output_key='NAME' for one output, or "
        "signature_outputs_as_dict=True for the dict."),
        signature=signature, output_key=output_key, as_dict=as_dict)
  if not signature and as_dict:
    raise errors.SignatureError(errors.compose(
        _AS_DICT_SENTENCE,
        "The layer calls the model's __call__, which returns whatever its "
        "function returns.",
        "Pass signature='NAME' with it, or drop signature_outputs_as_dict."),
        as_dict=as_dict)


def _call_output_key_sentence(error: Any, signature: Any,
                              output_key: Any) -> Optional[str]:
  """tensorflow_hub's sentence for an ``output_key`` that ``__call__``
  does not return (which ``load()`` checks from the traced functions), or
  None for other signature errors."""
  if signature is not None or output_key is None:
    return None
  if error.context.get("output_key") != output_key:
    return None
  choices = error.context.get("choices")
  if choices is None:
    return None
  if not choices:
    return ("Specifying `output_key` is forbidden if output type is not a "
            "dict.")
  return (f"KerasLayer output does not contain the output key {output_key} "
          f"(available: {list(choices)}).")


def _refuse_untrainable(model: Any, handle: Any, *,
                        trainable_from_start: bool) -> None:
  """Refuses a trainable layer over a model that cannot train in it.

  The model says which :data:`hub_adapter.support.LIMITS` row refuses it
  (:meth:`hub_adapter.Model.keras_training_limit`); the model's fine-tune
  cell is checked first, so an unsupported cell gives the table's reason.

  Args:
    model: The loaded :class:`hub_adapter.Model`.
    handle: The layer's handle (or object), for the message.
    trainable_from_start: Whether the layer was made with ``trainable=True``.

  Raises:
    UnsupportedTrainingError: the layer cannot train the model (a
      ValueError with tensorflow_hub's sentence first, as there).
  """
  limit = model.keras_training_limit(trainable_from_start)
  if limit is None:
    return
  first = _TRAINING_SENTENCES[limit]
  if not trainable_from_start:
    detail = ("KerasLayer.trainable was set to True after the layer was "
              "made with trainable=False.")
  elif model.signature:
    detail = f"KerasLayer(trainable=True) with signature {model.signature!r}."
  else:
    detail = ""
  cell = support.lookup(model.format, Operation.FINE_TUNE, model.mode)
  if not cell.supported:
    raise errors.UnsupportedTrainingError(
        format=model.format, mode=model.mode, operation=Operation.FINE_TUNE,
        handle=_handle_text(handle), reason=cell.reason, remedy=cell.remedy,
        detail=detail, first=first)
  support.refuse(limit, model.mode, handle=_handle_text(handle),
                 detail=detail, error=errors.UnsupportedTrainingError,
                 first=first)


def _load(handle: str, trainable: bool, **kwargs: Any) -> Any:
  """Loads through ``hub_adapter.load`` (one place, so tests see one path)."""
  from hub_adapter import loading  # pylint: disable=g-import-not-at-top
  return loading.load(handle, trainable, **kwargs)


def _refuse_if_unsafe(handle: Any) -> None:
  """What ``load(handle, safe=True)`` checks, without loading the model.

  Raises:
    UnsafeModelError: the model's graphs hold flagged ops.
  """
  handle = _check_handle(handle)
  # pylint: disable=g-import-not-at-top
  from hub_adapter import preflight
  from hub_adapter import untrusted
  # pylint: enable=g-import-not-at-top
  path, info = preflight.open_model(handle, check=False)
  try:
    untrusted.refuse_if_unsafe(info, handle)
  except errors.UnsafeModelError as e:
    flagged = tuple(e.context.get("flagged_ops") or ())
    ops = "; ".join(f"{op.op} in {op.where} ({op.why})" for op in flagged[:5])
    raise errors.UnsafeModelError(errors.compose(
        f"Keras safe mode refused to rebuild KerasLayer({handle!r}): its "
        f"model has {len(flagged)} op(s) that touch files, the network or "
        "run host code.",
        f"Rebuilding the layer loads the model, and calling it runs them: "
        f"{ops}.",
        "If you trust this model, load the Keras model with "
        "safe_mode=False (keras.models.load_model(path, safe_mode=False)) "
        "or after keras.config.enable_unsafe_deserialization(); inspect it "
        "first with `hub-adapter inspect HANDLE`.",
        {"handle": handle, "folder": path}), **e.context) from e


def _check_handle(handle: Any) -> str:
  if isinstance(handle, os.PathLike):
    handle = os.fspath(handle)
  if isinstance(handle, bytes):
    handle = handle.decode("utf-8")
  if not isinstance(handle, str):
    raise errors.InputError(errors.compose(
        f"Expected a string, got {handle!r}: KerasLayer(handle={handle!r}) "
        "needs a string handle or a callable object.",
        f"Got {type(handle).__name__}. The handle is loaded with "
        "hub_adapter.load() and saved in the layer's config, so it must be "
        "a folder, archive or URL string (or a loaded, callable model).",
        "Pass the model's folder, .tar.gz archive or URL."), handle=handle)
  return handle


def _tags_config(tags: Any) -> Optional[List[str]]:
  """Tags as a sorted JSON list (a lone string is one tag, as in load())."""
  if tags is None:
    return None
  return [tags] if isinstance(tags, str) else sorted(tags)


def _check_arguments(arguments: Any, handle: str) -> Dict[str, Any]:
  if arguments is None:
    return {}
  if not isinstance(arguments, Mapping) or not all(
      isinstance(k, str) for k in arguments):
    raise errors.InputError(errors.compose(
        f"KerasLayer({handle!r}, arguments={arguments!r}): arguments must be "
        "a dict with string keys.",
        "arguments are extra keyword inputs passed on every call.",
        "Pass e.g. arguments={'batch_norm_momentum': 0.99}."), handle=handle)
  for key, value in arguments.items():
    try:
      json.dumps(value)
    except TypeError:
      raise errors.InputError(errors.compose(
          f"KerasLayer({handle!r}, arguments=...): the value of {key!r} "
          f"({type(value).__name__}) is not JSON-serializable.",
          "arguments are saved in the layer's config.",
          "Pass Python numbers, strings, bools or lists of them."),
          handle=handle) from None
  return dict(arguments)


def _split_variables(model: Any):
  """(trainable, other) variables of a loaded model.

  The trainable ones are those the model would train: its
  ``trainable_variables`` when loaded for training; for a TF2 SavedModel
  loaded frozen, those it marks trainable (so ``layer.trainable = True``
  works later); none for a frozen TF1 Hub module.
  """
  trainable = model.layer_trainable_variables()
  ids = {id(v) for v in trainable}
  other = [v for v in _live(model.variables) if id(v) not in ids]
  return _live(trainable), other


def _saveable(model: Any) -> Any:
  """The trackable that keeps the model's state in a saved Keras model
  (:func:`hub_adapter.tf2.trackable.saveable`)."""
  from hub_adapter.tf2 import trackable  # pylint: disable=g-import-not-at-top
  return trackable.saveable(model)


def _live(variables: List[Any]) -> List[Any]:
  """Drops duplicates and dead graph-side variables
  (:func:`hub_adapter.tf2.trackable.live`)."""
  from hub_adapter.tf2 import trackable  # pylint: disable=g-import-not-at-top
  return trackable.live(variables)


def _apply_output_shape(result: Any, nest: Any) -> Any:
  """Checks and sets each output's static shape from ``output_shape``."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def apply(value, shape):
    if isinstance(shape, tuple) and shapes.is_shape(shape):
      return tf.ensure_shape(value, (None,) + tuple(shape))
    if isinstance(shape, dict) and isinstance(value, Mapping):
      return {k: (apply(v, shape[k]) if k in shape else v)
              for k, v in value.items()}
    if isinstance(shape, (list, tuple)) and isinstance(value, (list, tuple)):
      return type(value)(apply(v, s) for v, s in zip(value, shape))
    raise errors.InputError(errors.compose(
        f"output_shape={nest!r} does not mirror the layer's outputs.",
        f"The outputs are {type(result).__name__}: {result!r}.",
        "Give one shape per output, nested like the outputs."))

  return apply(result, nest)


def _register_running_flavour() -> None:
  from hub_adapter.keras_layers import flavours  # pylint: disable=g-import-not-at-top
  try:
    flavours.layer_class()
  except ImportError:  # Includes BackendUnavailableError.
    pass  # Registered when a layer is first made in a working flavour.


_register_running_flavour()
