"""hub_adapter.estimator: TF Hub models inside an Estimator ``model_fn``.

Estimator exists only on TF 2.15 (``requires("estimator")``). The tests run
in the TF2 session: an Estimator builds its own graph for each of
train/evaluate/predict, and inside it ``hub_adapter.load`` runs in TF1 compat
mode (graph mode) whatever the session; this is how TF 2.15 users run
Estimators. The two main checks are repeated in the TF1 compat session, for
programs that called ``disable_v2_behavior()``. On TF 2.21 every helper must
refuse with BackendUnavailableError.

The same ``model_fn`` is run for a TF2 SavedModel (``tf2_image_bn_reusable``:
batch norm, dropout, two regularizers) and a TF1 Hub module
(``tf1_image_feature_vector``: a ``{"train"}`` graph variant with batch norm
on batch statistics). A hook records the loss and outputs of every training
step and the batch-norm moving statistics before and after training.
Which graph variant ran is shown by the values: the first training step's
output equals the golden output of the training variant (``{"train"}`` tags
/ ``training=True``), predictions of the untrained model equal the golden
output of the inference variant (default tags / ``training=False``).

The last test runs tensorflow_hub 0.15's ``hub.KerasLayer`` in the same
``model_fn`` to show the gap hub_adapter closes: there
REGULARIZATION_LOSSES and TRAINABLE_VARIABLES stay empty and the moving
statistics never move.
"""
import numpy as np
import pytest

from hub_adapter import errors

FIXTURES = {
    # name: (golden case of the training variant, of the inference variant,
    #        input key, update ops collected in TRAIN)
    "tf2_image_bn_reusable": ("call_training_true", "call_training_false",
                              "inputs", 1),
    "tf1_image_feature_vector": ("tf1_train_default", "tf1_infer_default",
                                 "default", 2),
}
STEPS = 6
LEARNING_RATE = 0.05


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _golden(shared_fixtures, name, case_id, key):
  (case,) = [c for c in shared_fixtures.cases(name) if c.id == case_id]
  (output,) = case.outputs().values()
  return case.inputs()[key], output


class _Recorder:
  """Collects, per Estimator mode, what model_fn put in the graph, and for
  training the per-step loss and output and the moving statistics."""

  def __init__(self):
    self.collections = {}
    self.losses, self.outputs = [], []
    self.moving_before = self.moving_after = None

  def note_graph(self, mode):
    tf = _tf()
    self.collections[mode] = {
        key: len(tf.compat.v1.get_collection(key))
        for key in ("update_ops", "regularization_losses",
                    "trainable_variables")}

  def hook(self, loss, output, moving):
    tf = _tf()
    recorder = self

    class Hook(tf.compat.v1.train.SessionRunHook):

      def after_create_session(self, session, coord):
        recorder.moving_before = session.run(moving)

      def before_run(self, run_context):
        return tf.compat.v1.train.SessionRunArgs((loss, output))

      def after_run(self, run_context, run_values):
        recorder.losses.append(run_values.results[0])
        recorder.outputs.append(run_values.results[1])

      def end(self, session):
        recorder.moving_after = session.run(moving)

    return Hook()


def _run(apply, images, model_dir):
  """Predicts untrained, trains STEPS steps, evaluates, predicts again.

  Args:
    apply: ``apply(features, mode) -> (output, variables)`` builds the model
      in model_fn.
    images: One fixed batch (the golden inputs).
    model_dir: The Estimator's folder.

  Returns:
    The recorder, with ``predicted_before``, ``evaluation`` and
    ``predicted_after`` set.
  """
  tf = _tf()
  from hub_adapter import estimator as hub_estimator  # pylint: disable=g-import-not-at-top
  recorder = _Recorder()

  def model_fn(features, labels, mode):
    output, variables = apply(features, mode)
    recorder.note_graph(mode)
    if mode == tf.estimator.ModeKeys.PREDICT:
      return tf.estimator.EstimatorSpec(mode, predictions={"output": output})
    loss = hub_estimator.total_loss(
        tf.reduce_mean(tf.square(output - labels)))
    if mode == tf.estimator.ModeKeys.EVAL:
      return tf.estimator.EstimatorSpec(mode, loss=loss)
    train_op = hub_estimator.training_op(
        tf.compat.v1.train.GradientDescentOptimizer(LEARNING_RATE), loss,
        var_list=[v for v in variables if v.trainable] or None)
    moving = {v.name: v for v in variables if "moving" in v.name}
    return tf.estimator.EstimatorSpec(
        mode, loss=loss, train_op=train_op,
        training_hooks=[recorder.hook(loss, output, moving)])

  def train_input():
    target = np.ones((images.shape[0], 1), np.float32)
    return tf.data.Dataset.from_tensors((images, target)).repeat()

  def predict_input():
    return tf.data.Dataset.from_tensors(images)

  estimator = tf.estimator.Estimator(
      model_fn, model_dir=model_dir,
      config=tf.estimator.RunConfig(tf_random_seed=1, log_step_count_steps=None,
                                    save_summary_steps=None))
  recorder.predicted_before = np.stack(
      [p["output"] for p in estimator.predict(predict_input)])
  estimator.train(train_input, steps=STEPS)
  recorder.evaluation = estimator.evaluate(train_input, steps=1)
  recorder.predicted_after = np.stack(
      [p["output"] for p in estimator.predict(predict_input)])
  return recorder


def _hub_adapter_apply(handle):
  from hub_adapter import estimator as hub_estimator  # pylint: disable=g-import-not-at-top

  def apply(features, mode):
    model = hub_estimator.load_for_mode(handle, mode)
    return model(features), model.variables
  return apply


@pytest.fixture(scope="module")
def hub_adapter_runs(shared_fixtures, tmp_path_factory):
  """name -> (recorder, golden train output, golden inference output)."""
  runs = {}

  def get(name):
    if name not in runs:
      train_case, infer_case, key, _ = FIXTURES[name]
      images, train_out = _golden(shared_fixtures, name, train_case, key)
      _, infer_out = _golden(shared_fixtures, name, infer_case, key)
      recorder = _run(_hub_adapter_apply(shared_fixtures.path(name)), images,
                      str(tmp_path_factory.mktemp(name)))
      runs[name] = (recorder, train_out, infer_out)
    return runs[name]
  return get


def _check_training(hub_adapter_runs, name):
  recorder, train_out, infer_out = hub_adapter_runs(name)
  tol = dict(rtol=1e-5, atol=1e-5)
  # PREDICT on the untrained model ran the inference variant.
  np.testing.assert_allclose(recorder.predicted_before, infer_out, **tol)
  # TRAIN ran the training variant: its first output is that golden.
  np.testing.assert_allclose(recorder.outputs[0], train_out, **tol)
  assert not np.allclose(train_out, infer_out, **tol)
  # The loss goes down over the steps.
  assert len(recorder.losses) == STEPS
  assert recorder.losses[-1] < 0.9 * recorder.losses[0], recorder.losses
  assert recorder.evaluation["global_step"] == STEPS
  assert np.isfinite(recorder.evaluation["loss"])
  assert not np.allclose(recorder.predicted_after, recorder.predicted_before)


def _check_collections(hub_adapter_runs, shared_fixtures, name):
  recorder, _, _ = hub_adapter_runs(name)
  update_ops = FIXTURES[name][3]
  train = recorder.collections["train"]
  assert train["update_ops"] == update_ops
  assert train["regularization_losses"] == 2
  assert train["trainable_variables"] == sum(
      v["trainable"] for v in shared_fixtures.entry(name)["variables"])
  for mode in ("eval", "infer"):  # Inference variant, not trainable.
    assert recorder.collections[mode] == {
        "update_ops": 0, "regularization_losses": 0,
        "trainable_variables": 0}, mode
  assert sorted(v.split("/")[-1] for v in recorder.moving_before) == [
      "moving_mean:0", "moving_variance:0"]
  for key, before in recorder.moving_before.items():
    assert not np.allclose(before, recorder.moving_after[key]), key


@pytest.mark.requires("estimator")
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_model_fn_trains_evaluates_and_predicts(hub_adapter_runs, name):
  _check_training(hub_adapter_runs, name)


@pytest.mark.requires("estimator")
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_collections_and_moving_statistics_follow_the_mode(
    hub_adapter_runs, shared_fixtures, name):
  _check_collections(hub_adapter_runs, shared_fixtures, name)


# The same in a program that called tf.compat.v1.disable_v2_behavior().
@pytest.mark.tf1_compat
@pytest.mark.requires("estimator")
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_model_fn_trains_evaluates_and_predicts_in_tf1_compat_mode(
    hub_adapter_runs, name):
  _check_training(hub_adapter_runs, name)


@pytest.mark.tf1_compat
@pytest.mark.requires("estimator")
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_collections_follow_the_mode_in_tf1_compat_mode(
    hub_adapter_runs, shared_fixtures, name):
  _check_collections(hub_adapter_runs, shared_fixtures, name)


@pytest.mark.requires("estimator", "hub_module")
def test_hub_keras_layer_in_the_same_model_fn_leaves_the_gap(
    hub_adapter_runs, shared_fixtures, tmp_path):
  from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
  hub = import_tensorflow_hub()
  name = "tf2_image_bn_reusable"
  handle = shared_fixtures.path(name)
  layer_losses = {}

  def apply(features, mode):
    layer = hub.KerasLayer(handle, trainable=mode == "train")
    output = layer(features)
    layer_losses[mode] = len(layer.losses)
    return output, layer.variables

  images, _ = _golden(shared_fixtures, name, "call_training_true", "inputs")
  theirs = _run(apply, images, str(tmp_path / "keras_layer"))
  ours = hub_adapter_runs(name)[0]
  # hub.KerasLayer keeps its two regularization losses to itself ...
  assert layer_losses["train"] == 2
  assert theirs.collections["train"]["regularization_losses"] == 0
  assert theirs.collections["train"]["trainable_variables"] == 0
  assert theirs.collections["train"]["update_ops"] == 0
  # ... and runs the inference variant: the statistics never move.
  for key, before in theirs.moving_before.items():
    np.testing.assert_array_equal(before, theirs.moving_after[key])
  # With hub_adapter the same model_fn gets both.
  assert ours.collections["train"]["regularization_losses"] == 2
  assert ours.collections["train"]["trainable_variables"] == 5  # All but
  # the two moving statistics.
  for key, before in ours.moving_before.items():
    assert not np.allclose(before, ours.moving_after[key])


# The helpers themselves -------------------------------------------------------

@pytest.mark.requires("estimator")
def test_helpers_in_a_graph(shared_fixtures):
  tf = _tf()
  from hub_adapter import estimator as hub_estimator  # pylint: disable=g-import-not-at-top
  assert hub_estimator.is_training(tf.estimator.ModeKeys.TRAIN)
  assert not hub_estimator.is_training(tf.estimator.ModeKeys.PREDICT)
  with tf.Graph().as_default():
    model = hub_estimator.load_for_mode(
        shared_fixtures.path("tf2_image_bn_reusable"), "train")
    assert model.training and model.trainable and model.mode == "train"
    assert len(model.regularization_losses) == 2  # Falls through to Model.
    images = np.zeros((2, 8, 8, 3), np.float32)
    model(images, training=False)  # An explicit training wins.
    assert model.update_ops == []
    model(images)
    assert len(model.update_ops) == 1
    total = hub_estimator.total_loss(tf.constant(1.0))
    reg = hub_estimator.regularization_loss()
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      total, reg = session.run([total, reg])
    np.testing.assert_allclose(total, 1.0 + reg, rtol=1e-6)
    assert reg > 0
  with tf.Graph().as_default():
    assert hub_estimator.regularization_loss().op.type == "Const"
  with pytest.raises(errors.InputError) as info:
    hub_estimator.load_for_mode("unused", "training")
  assert "'eval', 'infer', 'train'" in str(info.value)


@pytest.mark.requires("tf221")
@pytest.mark.parametrize("helper, args", [
    ("load_for_mode", ("handle", "train")),
    ("is_training", ("train",)),
    ("regularization_loss", ()),
    ("total_loss", (1.0,)),
    ("training_op", (None, 1.0)),
])
def test_every_helper_needs_estimator_on_tf221(helper, args):
  from hub_adapter import estimator as hub_estimator  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.BackendUnavailableError) as info:
    getattr(hub_estimator, helper)(*args)
  message = str(info.value)
  assert isinstance(info.value, ImportError)
  assert f"hub_adapter.estimator.{helper}() needs tf.estimator" in message
  assert "TensorFlow 2.15 or older" in message
  assert "hub_adapter.KerasLayer(handle, trainable=True)" in message
  assert "Model.fit" in message
