"""Helpers for TF Hub models inside a ``tf.estimator`` ``model_fn``.

An Estimator calls ``model_fn(features, labels, mode)`` in a new graph for
each of training, evaluation and prediction, so a model used there has to
take three decisions from ``mode``: whether its variables train, which graph
variant runs (the ``{"train"}`` tag set of a TF1 Hub module, or
``training=True`` of a TF2 SavedModel's ``__call__``: batch norm on batch
statistics, dropout on), and that its regularization losses and update ops
(batch-norm moving statistics) reach the loss and the train op. With
``hub.KerasLayer`` none of this happens in a ``model_fn``: its losses stay in
Keras' own lists, ``REGULARIZATION_LOSSES`` stays empty, and it runs the
inference variant unless Keras' learning phase is set. Here::

  def model_fn(features, labels, mode):
    model = hub_estimator.load_for_mode(handle, mode)
    logits = model(features["images"])       # training = (mode == TRAIN)
    ...
    loss = hub_estimator.total_loss(tf.compat.v1.losses.softmax_cross_entropy(
        labels, logits))                      # + REGULARIZATION_LOSSES
    train_op = hub_estimator.training_op(optimizer, loss)  # runs UPDATE_OPS

``hub_adapter.load`` works the same for both formats in the Estimator's
graph (TF1 compat mode): with ``trainable=True`` it puts the model's
trainable variables in ``TRAINABLE_VARIABLES``, its regularization losses in
``REGULARIZATION_LOSSES`` and the update ops of ``training=True`` calls in
``UPDATE_OPS``.

Estimator exists only up to TensorFlow 2.15 (with ``tensorflow-estimator``);
on newer TensorFlow every helper raises ``BackendUnavailableError`` that
names the Keras replacement.
"""
from __future__ import annotations

from typing import Any, Optional

from hub_adapter import errors
from hub_adapter import runtime

REGULARIZATION_LOSSES = "regularization_losses"
UPDATE_OPS = "update_ops"
_MODES = ("train", "eval", "infer")  # tf.estimator.ModeKeys values.


def _require_estimator(helper: str) -> None:
  """Raises BackendUnavailableError unless tf.estimator can be used."""
  if runtime.has_estimator():
    return
  version = runtime.tf().__version__
  if runtime.tf_version() >= (2, 16):
    why = (f"TensorFlow {version} has no tf.estimator: TensorFlow 2.16 "
           "removed it and tensorflow-estimator stops at 2.15.")
  else:
    why = (f"TensorFlow {version} has no usable tf.estimator: the "
           "tensorflow-estimator package is not installed.")
  raise errors.BackendUnavailableError(errors.compose(
      f"hub_adapter.estimator.{helper}() needs tf.estimator, which exists "
      "only on TensorFlow 2.15 or older.",
      why,
      "Train with Keras instead: put hub_adapter.KerasLayer(handle, "
      "trainable=True) in a Keras model and call Model.fit (it adds the "
      "model's regularization losses and runs its batch-norm updates), or "
      "write a loop with hub_adapter.load(handle, trainable=True), "
      "model(x, training=True), tf.GradientTape and "
      "sum(model.regularization_losses). To keep Estimator code, use "
      "tensorflow==2.15 with tensorflow-estimator==2.15 (pip install "
      "'tensorflow~=2.15.0' 'tensorflow-estimator~=2.15.0').",
      {"tensorflow": version, "helper": helper}))


def _check_mode(mode: Any, helper: str) -> str:
  if mode not in _MODES:
    raise errors.InputError(errors.compose(
        f"hub_adapter.estimator.{helper}() got the mode {mode!r}.",
        "An Estimator passes model_fn one of tf.estimator.ModeKeys.",
        "Pass the mode model_fn received: "
        f"{errors.choices(_MODES)} (ModeKeys.TRAIN, EVAL, PREDICT).",
        {"mode": mode}))
  return mode


def is_training(mode: Any) -> bool:
  """True for ``tf.estimator.ModeKeys.TRAIN``.

  Raises:
    BackendUnavailableError: tf.estimator is not available.
    InputError: ``mode`` is not a ModeKeys value.
  """
  _require_estimator("is_training")
  mode = _check_mode(mode, "is_training")
  return mode == runtime.tf().estimator.ModeKeys.TRAIN


class ModeModel:
  """A loaded model bound to an Estimator mode.

  Calling it passes ``training=(mode == TRAIN)`` unless ``training`` is
  given: the ``{"train"}`` graph variant of a TF1 Hub module (where it has
  one) or ``training=True`` of a TF2 SavedModel in TRAIN, the inference
  variant in EVAL and PREDICT. Other attributes (``variables``,
  ``regularization_losses``, ``update_ops``, ``signatures``, ...) are the
  wrapped :class:`hub_adapter.Model`'s.

  Attributes:
    model: The :class:`hub_adapter.Model`.
    mode: The ``tf.estimator.ModeKeys`` value.
    training: Whether calls default to the training variant.
  """

  def __init__(self, model: Any, mode: str):
    self.model = model
    self.mode = mode
    self.training = mode == "train"

  def __call__(self, inputs=None, training: Optional[bool] = None, **kwargs):
    """Applies the model; ``training`` defaults to ``mode == TRAIN``."""
    return self.model(inputs, training=self.training if training is None
                      else training, **kwargs)

  def __getattr__(self, name: str) -> Any:
    if name.startswith("__") or name in ("model", "mode", "training"):
      raise AttributeError(name)
    return getattr(self.model, name)

  def __repr__(self) -> str:
    return f"<hub_adapter.estimator.ModeModel mode={self.mode} {self.model!r}>"


def load_for_mode(handle, mode, *, trainable: Optional[bool] = None,
                  **load_kwargs) -> ModeModel:
  """Loads a model inside a ``model_fn`` as the Estimator mode needs it.

  Args:
    handle: Anything ``hub_adapter.load`` accepts.
    mode: The ``mode`` argument of ``model_fn``.
    trainable: Whether the variables train; default ``mode == TRAIN``.
    **load_kwargs: Other arguments of ``hub_adapter.load`` (``signature``,
      ``output_key``, ``as_dict``, ``tags``, ``options``, ``safe``).

  Returns:
    A :class:`ModeModel` whose calls use the training variant in TRAIN and
    the inference variant otherwise.

  Raises:
    BackendUnavailableError: tf.estimator is not available.
    InputError: ``mode`` is not a ModeKeys value.
    Whatever ``hub_adapter.load`` raises for the handle.
  """
  _require_estimator("load_for_mode")
  mode = _check_mode(mode, "load_for_mode")
  if trainable is None:
    trainable = mode == runtime.tf().estimator.ModeKeys.TRAIN
  from hub_adapter import loading  # pylint: disable=g-import-not-at-top
  return ModeModel(loading.load(handle, trainable=trainable, **load_kwargs),
                   mode)


def regularization_loss(scope: Optional[str] = None):
  """Returns the sum of ``REGULARIZATION_LOSSES`` (0.0 when empty).

  Args:
    scope: Only losses whose name matches this scope (``re.match``).

  Raises:
    BackendUnavailableError: tf.estimator is not available.
  """
  _require_estimator("regularization_loss")
  tf = runtime.tf()
  losses = tf.compat.v1.get_collection(REGULARIZATION_LOSSES, scope)
  if not losses:
    return tf.constant(0.0, name="regularization_loss")
  return tf.add_n([tf.cast(l, tf.float32) for l in losses],
                  name="regularization_loss")


def total_loss(loss, scope: Optional[str] = None):
  """Returns ``loss`` plus every loss in ``REGULARIZATION_LOSSES``.

  Args:
    loss: The model's data loss (a scalar tensor).
    scope: Only regularization losses matching this scope.

  Raises:
    BackendUnavailableError: tf.estimator is not available.
  """
  _require_estimator("total_loss")
  tf = runtime.tf()
  losses = tf.compat.v1.get_collection(REGULARIZATION_LOSSES, scope)
  if not losses:
    return tf.identity(loss, name="total_loss")
  return tf.add_n([loss] + [tf.cast(l, loss.dtype) for l in losses],
                  name="total_loss")


def training_op(optimizer, loss, global_step=None, var_list=None,
                scope: Optional[str] = None):
  """Returns ``optimizer.minimize(loss)`` that first runs ``UPDATE_OPS``.

  Args:
    optimizer: A ``tf.compat.v1.train.Optimizer``.
    loss: The loss to minimize (e.g. from :func:`total_loss`).
    global_step: The step variable to increment; default the graph's
      (created if missing), as an Estimator expects.
    var_list: Variables to train; default ``TRAINABLE_VARIABLES``.
    scope: Only update ops matching this scope.

  Returns:
    The train op for ``EstimatorSpec(train_op=...)``.

  Raises:
    BackendUnavailableError: tf.estimator is not available.
  """
  _require_estimator("training_op")
  tf = runtime.tf()
  if global_step is None:
    global_step = tf.compat.v1.train.get_or_create_global_step()
  update_ops = tf.compat.v1.get_collection(UPDATE_OPS, scope)
  with tf.control_dependencies(update_ops):
    return optimizer.minimize(loss, global_step=global_step,
                              var_list=var_list)


__all__ = ["ModeModel", "is_training", "load_for_mode", "regularization_loss",
           "total_loss", "training_op"]
