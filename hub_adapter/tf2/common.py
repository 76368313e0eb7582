"""What every SavedModel backend shares: loading, variables, calling.

:class:`SavedModelModel` is the :class:`hub_adapter.model.Model` for objects
that ``tf.saved_model.load`` returns. It calls the root ``__call__`` (with
``training`` where the function takes it) or the picked signature (inputs as
a dict, or bare when the signature has one input; outputs by the rule in
:mod:`hub_adapter.signatures`). The eager, graph and TF1-signature backends
subclass it.

This module imports TensorFlow; only backends import it.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Mapping, Optional

import tensorflow as tf

from hub_adapter import errors
from hub_adapter import integrity
from hub_adapter import signatures as signatures_lib
from hub_adapter.model import LoadRequest
from hub_adapter.support import Format
from hub_adapter.tf2 import restore
from hub_adapter.tf2 import trackable

IO_DEVICE = "/job:localhost"
"""Where checkpoint reads run when a ``tf.distribute`` strategy is in scope."""


def require_cell(request: LoadRequest, backend: str, serves: str, *modes,
                 operations=None) -> None:
  """Refuses a request that ``load()`` would never route to this backend.

  Args:
    request: The request handed to the backend.
    backend: The backend's ``module:function`` name, for the message.
    serves: Which cells of the support table the backend serves.
    *modes: The modes it serves.
    operations: The operations it serves (default: any).

  Raises:
    HubAdapterError: the request is for another mode or operation (a
      programming error: ``load()`` picks the backend from the table).
  """
  if request.mode in modes and (operations is None
                                or request.operation in operations):
    return
  raise errors.HubAdapterError(errors.compose(
      f"{backend} was asked to {request.operation.value} in "
      f"{request.mode.value} mode.",
      f"This backend serves {serves} only.",
      "Call hub_adapter.load(), which picks the backend from the support "
      "table."))


def load_options(options: Any) -> Any:
  """Returns the ``tf.saved_model.LoadOptions`` to load with.

  The caller's ``options`` win. Otherwise, under a ``tf.distribute``
  strategy, reads are pinned to the local host (``experimental_io_device``),
  so that variables placed on other devices or workers restore from the
  local file system, as ``hub.KerasLayer`` users had to set by hand.

  Args:
    options: ``tf.saved_model.LoadOptions`` or None.

  Returns:
    ``options``, new ``LoadOptions``, or None.
  """
  if options is not None:
    return options
  if tf.distribute.has_strategy():
    return tf.saved_model.LoadOptions(experimental_io_device=io_device())
  return None


def io_device() -> str:
  """``IO_DEVICE``, or this worker's own CPU in a multi-worker cluster.

  Under ``MultiWorkerMirroredStrategy`` the local devices are
  ``/job:worker/replica:0/task:N/...`` and ``/job:localhost`` does not exist
  (restoring fails with "unknown device"), so the local CPU is named.
  """
  cpus = tf.config.list_logical_devices("CPU")
  if cpus and cpus[0].name.startswith("/job:") and not cpus[0].name.startswith(
      IO_DEVICE):
    return cpus[0].name
  return IO_DEVICE


def load_saved_model(request: LoadRequest) -> Any:
  """Runs ``tf.saved_model.load`` for a request (in the current mode).

  Args:
    request: The validated request.

  Returns:
    The loaded object; like ``hub.load``'s result it carries
    ``_is_hub_module_v1``.

  Raises:
    ModelFormatError: TensorFlow cannot load the folder (e.g. an op that is
      not registered because a library such as tensorflow_text is not
      imported).
  """
  options = load_options(request.options)
  tags = sorted(request.tags) if request.tags is not None else None
  try:
    # tf.saved_model.load, with the variables read in parallel threads
    # while the model is rebuilt (TensorFlow's own restore where unsure).
    raw = restore.load(request.path, tags=tags, options=options)
  except (ValueError, tf.errors.OpError, KeyError) as e:
    # A checksum failure names the damaged data file and variable.
    corrupt = integrity.restore_error(e, request.path, request.handle)
    if corrupt is not None:
      raise corrupt from e
    raise errors.ModelFormatError(errors.compose(
        f"TensorFlow could not load {request.handle!r} with tags "
        f"{signatures_lib.format_tags(request.tags)}.",
        f"{type(e).__name__}: {str(e).strip()[:2000]}",
        "If an op is not registered, import the library that defines it "
        "(e.g. import tensorflow_text) before loading; otherwise the folder "
        "may be incomplete: delete it (or its cache entry) and fetch it "
        "again.",
        signatures_lib.context(request.info, request.handle, request.mode)),
        handle=request.handle, path=request.path) from e
  # hub.load marks its result so; hub.KerasLayer(obj) reads the mark.
  try:
    setattr(raw, "_is_hub_module_v1", request.format is Format.TF1_HUB)
  except AttributeError:
    pass
  return raw


def list_variables(raw: Any) -> List[Any]:
  """The variables of a loaded object.

  Uses its ``variables`` attribute (reusable SavedModels and TF1 modules
  have one); otherwise walks the object graph, so plain ``tf.Module``
  exports work too.
  """
  if hasattr(raw, "variables"):
    return list(raw.variables)
  found, seen = [], set()
  for obj in tf.train.TrackableView(raw).descendants():
    if isinstance(obj, tf.Variable) and id(obj) not in seen:
      seen.add(id(obj))
      found.append(obj)
  return found


def list_trainable_variables(raw: Any) -> List[Any]:
  """The variables a loaded object marks trainable."""
  if hasattr(raw, "trainable_variables"):
    return list(raw.trainable_variables)
  return [v for v in list_variables(raw) if v.trainable]


def accepts_training(request: LoadRequest, raw: Any) -> bool:
  """Whether the root ``__call__`` takes a ``training`` argument."""
  known = getattr(request.info, "call_accepts_training", None)
  if known is not None:
    return bool(known)
  call = getattr(raw, "__call__", None)
  if call is None:
    return False
  try:
    spec = inspect.getfullargspec(call)
  except TypeError:
    return False
  return "training" in spec.args or "training" in spec.kwonlyargs


def _traced_inputs(raw: Any) -> str:
  """The input structures ``__call__`` was traced for, for error messages."""
  functions = getattr(getattr(raw, "__call__", None), "concrete_functions",
                      None) or []
  described = []
  for function in functions:
    args, kwargs = function.structured_input_signature
    described.append(f"args={args!r} kwargs={kwargs!r}")
  return "; ".join(described) or "(unknown)"


def saved_model_layer_trainable_variables(model: Any) -> List[Any]:
  """The trainable variables of a TF2 SavedModel, also when loaded frozen.

  Args:
    model: A :class:`hub_adapter.Model` over a ``tf.saved_model.load``
      result (or a live object in the same role).

  Returns:
    ``model.trainable_variables`` when loaded for training; else the raw
    object's ``trainable_variables``, or its variables marked trainable.
  """
  if model.trainable:
    return list(model.trainable_variables)
  raw = model.raw
  if hasattr(raw, "trainable_variables"):
    return list(raw.trainable_variables)
  return [v for v in model.variables if v.trainable]


class SavedModelModel(trackable.TrackableModel):
  """A model loaded with ``tf.saved_model.load``.

  ``model(inputs, training=None, **kwargs)``:

  - root ``__call__`` (``signature`` is None): calls ``raw(inputs,
    **kwargs)``, adding ``training=`` when it is not None and the function
    takes it (it is passed as given, whatever ``trainable`` is, so results
    equal ``hub.load(handle)(inputs, training=...)``); returns what the
    function returns (``output_key`` picks from a dict result);
  - a signature: ``inputs`` is a dict keyed by input name, or a bare value
    when the signature has one input (keywords work too); values are checked
    against the signature and converted to its dtypes; returns the outputs
    dict when ``as_dict=True``, the ``output_key`` output when given, else
    the ``default`` output, else the only output, else the dict; TF2
    signatures ignore ``training`` (they were traced for inference).

  Attributes: ``signatures`` (the loaded ``signatures`` mapping, as
  ``hub.load`` has it), ``variables``, ``trainable_variables`` (empty unless
  ``trainable=True``), ``regularization_losses``, ``update_ops``, ``info``,
  ``raw``; other attributes fall through to ``raw``. It is trackable
  (:mod:`hub_adapter.tf2.trackable`): ``tf.saved_model.save``,
  ``tf.train.Checkpoint`` and objects holding it see the loaded model.
  """

  def __init__(self, request: LoadRequest, raw: Any):
    super().__init__(request, raw)
    self._accepts_training = (request.signature is None
                              and accepts_training(request, raw))

  # -- attributes -------------------------------------------------------------
  @property
  def signatures(self) -> Mapping[str, Any]:
    return self._raw.signatures

  @property
  def variables(self) -> List[Any]:
    return list_variables(self._raw)

  @property
  def trainable_variables(self) -> List[Any]:
    if not self.trainable:
      return []
    return list_trainable_variables(self._raw)

  def keras_training_limit(self, trainable_from_start: bool) -> Optional[str]:
    """A signature is traced for inference: a layer cannot train through it
    (see :meth:`hub_adapter.Model.keras_training_limit`)."""
    del trainable_from_start
    return ("keras_signature_fine_tune" if self.signature is not None
            else None)

  def layer_trainable_variables(self) -> List[Any]:
    """As :meth:`hub_adapter.Model.layer_trainable_variables`; a TF2
    SavedModel loaded frozen offers those it marks trainable, so that
    ``layer.trainable = True`` works later.

    Returns:
      A list of variables.
    """
    return saved_model_layer_trainable_variables(self)

  @property
  def non_trainable_variables(self) -> List[Any]:
    trainable = {id(v) for v in self.trainable_variables}
    return [v for v in self.variables if id(v) not in trainable]

  @property
  def regularization_losses(self) -> List[Any]:
    """The model's regularization losses: zero-argument callables in TF2,
    as on ``hub.load``'s result (``[f() for f in ...]`` gives the values)."""
    return list(getattr(self._raw, "regularization_losses", None) or [])

  # -- calling ----------------------------------------------------------------
  def _facts(self, **extra: Any) -> Dict[str, Any]:
    return signatures_lib.context(
        self.info, self.handle, self.mode,
        signature=self.signature or signatures_lib.CALL, **extra)

  def signature_info(self, name: Optional[str] = None,
                     tags: Optional[Any] = None) -> Any:
    """The ``SignatureInfo`` of a signature (default: the picked one)."""
    name = name or self.signature
    tags = self.tags if tags is None else tags
    return self.info.signatures_for(tags).get(name)

  def _call_signature(self, function: Any, signature_info: Any, inputs: Any,
                      kwargs: Mapping[str, Any]) -> Any:
    feed = signatures_lib.prepare_inputs(
        signature_info, inputs, kwargs, self._facts())
    # Sparse/ragged inputs of TF1 signatures: the keywords TF2 gave them.
    outputs = function(**signatures_lib.flat_composite_inputs(
        signature_info, feed))
    return signatures_lib.select_output(
        outputs, self._request.output_key, self._request.as_dict)

  def _call_root(self, inputs: Any, training: Any,
                 kwargs: Mapping[str, Any]) -> Any:
    args = [] if inputs is None else [inputs]
    call_kwargs = dict(kwargs)
    if self._accepts_training and training is not None:
      call_kwargs["training"] = python_bool(training)
    try:
      if tf.is_tensor(call_kwargs.get("training")):
        flag = call_kwargs.pop("training")
        result = tf.cond(flag,
                         lambda: self._raw(*args, training=True,
                                           **call_kwargs),
                         lambda: self._raw(*args, training=False,
                                           **call_kwargs))
      else:
        result = self._raw(*args, **call_kwargs)
    except (TypeError, ValueError) as e:
      if "matching" not in str(e) and "signature" not in str(e):
        raise
      raise errors.InputError(errors.compose(
          "The inputs do not match any input signature that __call__ was "
          "saved with.",
          f"Traced inputs: {_traced_inputs(self._raw)}. TensorFlow said: "
          f"{str(e).strip()[:1500]}",
          "Pass inputs with the traced dtype and a compatible shape (None "
          "is any size); use a signature (signature=...) if the model has "
          "one.", self._facts()), handle=self.handle) from e
    key = self._request.output_key
    if key is not None and isinstance(result, Mapping):
      if key not in result:
        raise errors.SignatureError(errors.compose(
            f"__call__ returned no output {key!r}.",
            f"Its outputs are {errors.choices(result)}.",
            "Pass output_key= one of those.", self._facts()),
            handle=self.handle, output_key=key)
      result = result[key]
    return result

  def __call__(self, inputs=None, training: Optional[bool] = None, **kwargs):
    if self.signature is None:
      return self._call_root(inputs, training, kwargs)
    return self._call_signature(self._raw.signatures[self.signature],
                                self.signature_info(), inputs, kwargs)


def python_bool(training: Any) -> Any:
  """Returns ``training`` as a Python bool where its value is known (bools,
  eager tensors, constants); a graph tensor of unknown value stays a tensor
  (the call then branches with ``tf.cond``)."""
  if isinstance(training, bool):
    return training
  if tf.is_tensor(training):
    value = tf.get_static_value(training)
    return training if value is None else bool(value)
  return bool(training)


def check_call_output_key(request: LoadRequest, raw: Any) -> None:
  """Validates ``output_key`` for the root ``__call__`` right after loading.

  The protos do not describe what ``__call__`` returns, so this reads the
  traced functions' output structures (cheap; nothing runs).

  Raises:
    SignatureError: every traced ``__call__`` returns a dict without
      ``output_key``, or none returns a dict.
  """
  key = request.output_key
  if key is None or request.signature is not None:
    return
  functions = getattr(getattr(raw, "__call__", None), "concrete_functions",
                      None) or []
  structures = [f.structured_outputs for f in functions]
  if not structures:
    return
  keys = set()
  for structure in structures:
    if isinstance(structure, Mapping):
      if key in structure:
        return
      keys.update(structure)
  why = (f"Its outputs are {errors.choices(keys)}." if keys else
         "__call__ returns a single value, not a dict.")
  raise errors.SignatureError(errors.compose(
      f"The output {key!r} asked for is not returned by __call__ of "
      f"{request.handle!r}.", why,
      "Pass output_key= one of those outputs, or leave it None." if keys else
      "Leave output_key=None.",
      signatures_lib.context(request.info, request.handle, request.mode,
                             signature=signatures_lib.CALL)),
      handle=request.handle, output_key=key, choices=tuple(sorted(keys)))
