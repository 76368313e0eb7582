"""What ``KerasLayer`` does under Keras 3 with ``KERAS_BACKEND=jax``.

The model stays a TensorFlow SavedModel; JAX calls it through
``jax.experimental.jax2tf.call_tf``, eagerly or under ``jax.jit`` (XLA
compiles the TensorFlow graph into the JAX computation), and ``jax.grad``
differentiates it with TensorFlow's gradients.

- Weights: the SavedModel's variables become the layer's Keras weights,
  JAX arrays made with ``add_weight`` from the variables' loaded values
  (trainable as the model marks them, non-trainable otherwise), in the
  order of the TensorFlow flavour. They are copies: training changes them,
  not the loaded ``tf.Variable`` s (``layer.resolved_object``).
- Calls: ``call_tf`` would read the variables a TF function captures as
  constants, so the model's function is rewritten
  (:func:`hub_adapter.keras_layers.lifting.lift`) into a pure function of
  (variable values, seed, inputs) returning (outputs, new values of the
  variables it writes). ``call`` passes ``[w.value for w in weights]``; in
  training the new values (batch-norm moving statistics) are assigned to
  the non-trainable weights, which Keras' JAX trainer does statelessly.
  One rewrite is made per (training, input dtypes and shapes without the
  batch dimension) and kept.
- Randomness: stateful random ops (dropout of ``tf_keras`` models) draw
  from a Keras ``SeedGenerator`` instead, so a step and its recomputation
  for the gradient use the same mask.
- Losses: the model's regularization losses are rewritten the same way and
  added with ``add_loss`` on every call while the layer is trainable.
- Checks at construction: TF1 Hub modules (convert them first), string
  inputs or outputs, variables used where the rewrite cannot follow them
  raise :class:`~hub_adapter.errors.UnsupportedBackendError`; a model XLA
  cannot compile (lookup tables, tensorflow_text ops) makes a layer that
  runs eagerly only (``supports_jit = False``, with a warning), and
  ``jax.jit`` around it raises the same error.

Wording of every refusal: :mod:`hub_adapter.backend_support`. Only
:mod:`hub_adapter.keras_layers.flavours` imports this module.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from hub_adapter import backend_support
from hub_adapter.backend_support import Limit
from hub_adapter.keras_layers import keras3
from hub_adapter.keras_layers import lifting
from hub_adapter.support import Format

BACKEND = backend_support.JAX


def _jax():
  """(jax, jax2tf), or UnsupportedBackendError if they cannot be imported."""
  try:
    import jax  # pylint: disable=g-import-not-at-top
    from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    backend_support.refuse(
        BACKEND, Limit.JAX_MISSING,
        f"KerasLayer cannot call TensorFlow from JAX: {e}.")
  return jax, jax2tf


def staged() -> bool:
  """True while JAX traces for compilation (``jax.jit``, ``lax.scan``, ...).

  Under ``jax.jit`` every JAX operation is staged, even on constants, so a
  fresh array is a tracer exactly then (``jax.grad`` alone evaluates
  eagerly and returns a concrete array). Keras' own shape inference
  (``backend.compute_output_spec``, in its ``SymbolicScope``) traces too
  but never compiles, so it does not count.
  """
  jax, _ = _jax()
  if not isinstance(jax.numpy.zeros(()), jax.core.Tracer):
    return False
  try:
    from keras.src.backend.common import symbolic_scope  # pylint: disable=g-import-not-at-top
  except ImportError:
    return True
  return not symbolic_scope.in_symbolic_scope()


@dataclasses.dataclass
class _Entry:
  """A lifted function, its ``tf.function`` and its JAX callable.

  ``call`` lets ``call_tf`` infer output shapes; ``shaped`` holds callables
  made with explicit ``output_shape_dtype`` (by input shapes) for graphs
  whose output shapes TensorFlow cannot infer.
  """
  lifted: lifting.Lifted
  tf_function: Any
  call: Any
  shaped: Dict[Any, Any] = dataclasses.field(default_factory=dict)


class Behaviour(keras3.Behaviour):
  """Keras 3 JAX-backend hooks of ``hub_adapter.KerasLayer``."""

  def __init__(self, *args, **kwargs):
    super().__init__(*args, **kwargs)
    self._hub_preflight()

  # -- weights ----------------------------------------------------------------
  def _hub_track_variables(self, trainable_vars: List[Any],
                           other_vars: List[Any]) -> None:
    model = self._hub_model
    if model.format is Format.TF1_HUB:
      backend_support.refuse(
          BACKEND, Limit.TF1_HUB,
          f"KerasLayer({self._hub_handle!r}) is a TF1 Hub module, which "
          "cannot run on Keras' JAX backend as it is.",
          handle=self._hub_handle)
    _jax()
    variables = list(trainable_vars) + list(other_vars)
    weights = []
    for variable, trainable in (
        [(v, True) for v in trainable_vars] +
        [(v, False) for v in other_vars]):
      value = variable.numpy()
      weights.append(self.add_weight(
          shape=tuple(variable.shape), dtype=variable.dtype.name,
          trainable=trainable, autocast=False,
          name=keras3._weight_name(variable),  # pylint: disable=protected-access
          initializer=_Constant(value)))
    for name, value in (("_hub_tf_variables", variables),
                        ("_hub_weights", weights),
                        ("_hub_entries", {}), ("_hub_loss_entry", None),
                        ("_hub_seed_generator", None)):
      object.__setattr__(self, name, value)

  def _hub_init_losses(self, losses: List[Any]) -> None:
    object.__setattr__(self, "_hub_losses", list(losses))

  # -- checks at construction ---------------------------------------------------
  def _hub_preflight(self) -> None:
    """Rewrites the model's function for its saved input specs now, so that
    what cannot work is refused here rather than in ``fit``."""
    specs = self._hub_saved_specs()
    if specs is None:
      return
    self._hub_refuse_strings(specs, "inputs")
    # Both flags, even for a frozen layer: ``trainable`` may be set later,
    # and the training graph's needs (a seed generator) must exist before
    # Keras traces a training step.
    flags = [False, True]
    blockers: List[lifting.JitBlocker] = []
    for flag in flags:
      entry = self._hub_entry(self._hub_trace_specs(specs), flag)
      self._hub_refuse_strings(entry.lifted.output_structure, "outputs")
      blockers.extend(entry.lifted.jit_blockers)
    if self._hub_losses:
      blockers.extend(self._hub_losses_entry().lifted.jit_blockers)
    if blockers:
      self.supports_jit = False
      warnings.warn(backend_support.EAGER_ONLY_NOTE.format(
          handle=self._hub_handle, blockers=_describe(blockers)),
          stacklevel=3)

  def _hub_refuse_strings(self, nest: Any, where: str) -> None:
    names = [_spec_name(path) for path, spec in _flatten_with_paths(nest)
             if getattr(spec, "dtype", None) == tf.string]
    if names:
      backend_support.refuse(
          BACKEND, Limit.STRING_IO,
          f"KerasLayer({self._hub_handle!r}) has string {where} "
          f"({', '.join(names)}), which JAX arrays cannot hold.",
          handle=self._hub_handle)

  def _hub_saved_specs(self) -> Any:
    """The input specs the model was saved with (a nest), or None."""
    if "_hub_saved_specs_cache" not in self.__dict__:
      object.__setattr__(self, "_hub_saved_specs_cache",
                         self._hub_find_saved_specs())
    return self._hub_saved_specs_cache

  def _hub_find_saved_specs(self) -> Any:
    model = self._hub_model
    if model.signature is not None:
      function = getattr(model.raw, "signatures", {}).get(model.signature)
      if function is not None:
        inputs = dict(function.structured_input_signature[1])
      else:
        inputs = {name: tf.TensorSpec(info.shape, info.dtype) for name, info
                  in model.info.signatures_for(model.tags)[
                      model.signature].inputs.items()}
      return {name: spec for name, spec in inputs.items()
              if name not in self._hub_arguments}
    functions = getattr(getattr(model.raw, "__call__", None),
                        "concrete_functions", None) or []
    for function in functions:
      args = function.structured_input_signature[0]
      if args:
        return args[0]
    return None

  @staticmethod
  def _hub_trace_specs(specs: Any) -> Any:
    """Specs with an unknown batch dimension (one rewrite for any batch)."""
    def relax(spec):
      shape = spec.shape
      if shape.rank:
        shape = tf.TensorShape([None]).concatenate(shape[1:])
      return tf.TensorSpec(shape, spec.dtype)
    return tf.nest.map_structure(relax, specs)

  # -- calling -------------------------------------------------------------------
  def call(self, inputs, training=None):
    """Applies the model through ``call_tf`` (see the module doc).

    Args:
      inputs: JAX arrays (a nest for dict inputs).
      training: Keras' training flag.

    Returns:
      The model's outputs, as JAX arrays.

    Raises:
      UnsupportedBackendError: under ``jax.jit`` for a model XLA cannot
        compile.
      UnsupportedOperationError: ``trainable`` was set on a layer whose
        model cannot be fine-tuned.
    """
    self._hub_check_trainability()
    flag = bool(self._hub_training_flag(training))
    flat = tf.nest.flatten(inputs)
    entry = self._hub_entry(self._hub_call_specs(inputs, flat), flag)
    lifted = entry.lifted
    if lifted.jit_blockers and staged():
      self._hub_refuse_jit(lifted.jit_blockers)
    values = [self._hub_weights[i].value for i in lifted.variable_indices]
    seed = self._hub_seed(lifted)
    outputs, states = self._hub_jax_call(entry, values, seed, flat)(
        values, seed, flat)
    for index, state in zip(lifted.state_indices, states):
      self._hub_weights[index].assign(state)
    if self.trainable and self._hub_losses:
      losses = self._hub_losses_entry()
      if losses.lifted.jit_blockers and staged():
        self._hub_refuse_jit(losses.lifted.jit_blockers)
      values = [self._hub_weights[i].value
                for i in losses.lifted.variable_indices]
      seed = self._hub_seed(losses.lifted)
      loss_values, _ = self._hub_jax_call(losses, values, seed, [])(
          values, seed, [])
      for loss in loss_values:
        self.add_loss(loss)
    return outputs

  def _hub_after_call(self, training: Any) -> None:
    del training  # call() above adds the losses itself.

  def _hub_call_specs(self, inputs: Any, flat: Sequence[Any]) -> Any:
    """Specs to trace for ``inputs``: their shapes (batch unknown) with the
    dtypes the model was saved with (JAX holds int64 as int32)."""
    saved = self._hub_saved_specs()
    saved_flat = None
    if saved is not None:
      try:
        tf.nest.assert_same_structure(saved, inputs)
        saved_flat = tf.nest.flatten(saved)
      except (ValueError, TypeError):
        saved_flat = None
    specs = []
    for k, value in enumerate(flat):
      dtype = (saved_flat[k].dtype if saved_flat is not None
               else tf.as_dtype(np.dtype(value.dtype).name))
      specs.append(tf.TensorSpec(tuple(value.shape), dtype))
    return self._hub_trace_specs(tf.nest.pack_sequence_as(inputs, specs))

  def _hub_entry(self, specs: Any, training: bool) -> _Entry:
    """The rewritten model function for input ``specs`` and ``training``.

    Args:
      specs: A nest of ``tf.TensorSpec`` (batch dimension unknown).
      training: The training flag passed to the model.

    Returns:
      The cached or new :class:`_Entry`.

    Raises:
      InputError: the model's function does not accept ``specs``.
      UnsupportedBackendError: the function cannot be rewritten.
    """
    key = (training, repr(tf.nest.map_structure(
        lambda s: (s.dtype.name, tuple(s.shape.as_list())), specs)))
    entry = self._hub_entries.get(key)
    if entry is None:
      forward = tf.function(lambda x: self._hub_forward(x, training),
                            autograph=False)
      try:
        function = forward.get_concrete_function(specs)
      except (TypeError, ValueError) as e:
        raise self._hub_input_error(specs, e) from e
      entry = self._hub_make_entry(function, "the model's function")
      self._hub_entries[key] = entry
    return entry

  def _hub_losses_entry(self) -> _Entry:
    """The rewritten function computing all regularization losses."""
    if self._hub_loss_entry is None:
      losses = list(self._hub_losses)

      def all_losses():
        return [tf.convert_to_tensor(loss() if callable(loss) else loss)
                for loss in losses]

      function = tf.function(all_losses, autograph=False)
      object.__setattr__(self, "_hub_loss_entry", self._hub_make_entry(
          function.get_concrete_function(), "the regularization losses"))
    return self._hub_loss_entry

  def _hub_make_entry(self, function: Any, what: str) -> _Entry:
    """Lifts ``function``'s variables and wraps it with ``call_tf``.

    Args:
      function: A ``tf.ConcreteFunction`` capturing the model's variables.
      what: Its name in error messages.

    Returns:
      The new :class:`_Entry` (a seed generator is made the first time a
      function draws random numbers).

    Raises:
      UnsupportedBackendError: the variables cannot be lifted.
    """
    try:
      lifted = lifting.lift(function, self._hub_tf_variables,
                            what=f"{what} of {self._hub_handle!r}")
    except lifting.LiftError as e:
      backend_support.refuse(
          BACKEND, Limit.NOT_LIFTABLE,
          f"KerasLayer({self._hub_handle!r}) cannot take {what}'s "
          f"variables as JAX weights: {e.message.splitlines()[0]}",
          handle=self._hub_handle, detail=e.message)
    if lifted.has_seed and self._hub_seed_generator is None:
      # Tracked by Keras as a seed generator: its state is in
      # layer.variables (and so in fit's state), not in layer.weights.
      self._hub_seed_generator = keras.random.SeedGenerator(name="hub_seed")
    jax, jax2tf = _jax()
    x64 = bool(jax.config.jax_enable_x64)

    def apply(values, seed, inputs):
      outputs, states = lifted.apply(values, seed, inputs)
      return _jax_dtypes(outputs, x64), _jax_dtypes(states, x64)

    tf_function = tf.function(apply, autograph=False)
    return _Entry(lifted, tf_function,
                  jax2tf.call_tf(tf_function, has_side_effects=False))

  def _hub_jax_call(self, entry: _Entry, values: Sequence[Any], seed: Any,
                    flat: Sequence[Any]) -> Any:
    """The JAX callable for these arguments.

    Eagerly, ``call_tf`` needs no shapes. While JAX traces, it needs every
    output's static shape: TensorFlow infers them from the input shapes,
    except where the graph loses them (lookup tables, ...): there an
    unknown first dimension is the inputs' batch size, and
    ``output_shape=`` gives the rest.
    """
    jax, jax2tf = _jax()
    if not isinstance(jax.numpy.zeros(()), jax.core.Tracer):
      return entry.call
    key = tuple((tuple(np.shape(a)), str(a.dtype)) for a in
                list(values) + [seed] + list(flat))
    if key in entry.shaped:
      return entry.shaped[key]
    specs = [[tf.TensorSpec(np.shape(a), _tf_dtype(a.dtype)) for a in group]
             for group in (values, flat)]
    seed_spec = tf.TensorSpec([2], _tf_dtype(seed.dtype))
    concrete = entry.tf_function.get_concrete_function(
        specs[0], seed_spec, specs[1])
    outputs = concrete.structured_outputs
    call = entry.call
    if not all(t.shape.is_fully_defined()
               for t in tf.nest.flatten(outputs, expand_composites=True)):
      batch = next((np.shape(a)[0] for a in flat if np.ndim(a)), None)
      call = jax2tf.call_tf(
          entry.tf_function, has_side_effects=False,
          output_shape_dtype=tf.nest.map_structure(
              lambda t: self._hub_aval(t, batch, jax), outputs))
    entry.shaped[key] = call
    return call

  def _hub_aval(self, tensor: Any, batch: Optional[int], jax: Any) -> Any:
    from hub_adapter import errors  # pylint: disable=g-import-not-at-top
    dims = tensor.shape.as_list() if tensor.shape.rank is not None else None
    if dims and dims[0] is None:
      dims[0] = batch
    if dims is None or any(d is None for d in dims):
      raise errors.InputError(errors.compose(
          f"KerasLayer({self._hub_handle!r}) cannot tell the shape of its "
          f"output {tensor.name} ({tensor.shape}) under jax.jit.",
          "JAX compiles for static shapes, and the model's graph does not "
          "determine this output's shape from the input shapes.",
          "Pass output_shape= (without the batch dimension), e.g. "
          "KerasLayer(handle, output_shape=[8])."), handle=self._hub_handle)
    return jax.ShapeDtypeStruct(tuple(dims), tensor.dtype.as_numpy_dtype)

  def _hub_seed(self, lifted: lifting.Lifted) -> Any:
    if not lifted.has_seed or self._hub_seed_generator is None:
      return np.zeros([2], np.int32)
    return keras.random.randint([2], 0, 2**31 - 1, dtype="int32",
                                seed=self._hub_seed_generator)

  def _hub_refuse_jit(self, blockers: Sequence[lifting.JitBlocker]) -> None:
    backend_support.refuse(
        BACKEND, Limit.NOT_COMPILABLE,
        f"KerasLayer({self._hub_handle!r}) was called under jax.jit, but "
        f"XLA cannot compile {_describe(blockers)}.",
        handle=self._hub_handle)

  def _hub_input_error(self, specs: Any, error: Exception) -> Exception:
    from hub_adapter import errors  # pylint: disable=g-import-not-at-top
    return errors.InputError(errors.compose(
        f"KerasLayer({self._hub_handle!r}) cannot call the model on inputs "
        f"{specs}.", f"{type(error).__name__}: {str(error)[:1500]}",
        f"Pass inputs matching {self._hub_saved_specs()}."),
        handle=self._hub_handle)


def _tf_dtype(dtype: Any) -> tf.DType:
  return tf.as_dtype(np.dtype(dtype).name)


_NARROW = {tf.int64: tf.int32, tf.uint64: tf.uint32, tf.float64: tf.float32,
           tf.complex128: tf.complex64}


def _jax_dtypes(nest: Any, x64: bool) -> Any:
  """Casts 64-bit tensors to the 32-bit types JAX holds them as, unless
  ``jax_enable_x64`` is on (so declared output shapes match)."""
  if x64:
    return nest

  def narrow(tensor):
    target = _NARROW.get(tensor.dtype)
    return tensor if target is None else tf.cast(tensor, target)

  return tf.nest.map_structure(narrow, nest)


class _Constant:
  """A Keras initializer returning a fixed value (a weight's loaded value).

  Args:
    value: The numpy value.
  """

  def __init__(self, value: np.ndarray):
    self.value = value

  def __call__(self, shape, dtype=None):
    del shape
    return keras.ops.convert_to_tensor(self.value, dtype=dtype)


def _describe(blockers: Sequence[lifting.JitBlocker]) -> str:
  """What XLA cannot compile, grouped by reason, naming the ops."""
  ops_by_why: Dict[str, List[str]] = {}
  for blocker in blockers:
    ops = ops_by_why.setdefault(blocker.why, [])
    if blocker.op not in ("Identity", "IdentityN", "Placeholder", "Const") \
        and blocker.op not in ops:
      ops.append(blocker.op)
  parts = []
  for why, ops in sorted(ops_by_why.items()):
    shown = ", ".join(sorted(ops)[:8]) + (" ..." if len(ops) > 8 else "")
    parts.append(f"{why} (ops: {shown})" if ops else why)
  return "; ".join(parts)


def _flatten_with_paths(nest: Any) -> List[Tuple[Tuple[Any, ...], Any]]:
  """(path, leaf) pairs of a nest of dicts, lists and tuples."""
  if isinstance(nest, dict):
    return [((key,) + path, leaf) for key in sorted(nest)
            for path, leaf in _flatten_with_paths(nest[key])]
  if isinstance(nest, (list, tuple)):
    return [((k,) + path, leaf) for k, item in enumerate(nest)
            for path, leaf in _flatten_with_paths(item)]
  return [((), nest)]


def _spec_name(path: Tuple[Any, ...]) -> str:
  return "/".join(str(p) for p in path) or "input"
