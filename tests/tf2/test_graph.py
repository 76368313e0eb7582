"""TF2 SavedModels in TF1 compat mode (hub_adapter.tf2.graph): Session runs,
graph collections, initialization, fine-tuning with a TF1 optimizer.

All but the last test run in the TF1 compat session; the last one builds a
tf.Graph inside the TF2 session, which is TF1 compat mode too.
"""
import os

import numpy as np
import pytest

# pylint: disable=g-import-not-at-top,wrong-import-position
import tf2_models

import hub_adapter
from hub_adapter import errors
from hub_adapter.support import Mode
from hub_adapter.tf2 import graph as graph_backend

tf1_compat = pytest.mark.tf1_compat


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _collection(key):
  tf = _tf()
  return tf.compat.v1.get_collection(getattr(tf.compat.v1.GraphKeys, key))


def _initialize(session):
  tf = _tf()
  session.run([tf.compat.v1.global_variables_initializer(),
               tf.compat.v1.tables_initializer()])


def _by_name(model, prefix):
  return [v for v in model.variables if v.name.startswith(prefix)][0]


@tf1_compat
def test_goldens_in_a_session(shared_fixtures):
  tf = _tf()
  model = hub_adapter.load(shared_fixtures.path("tf2_keras_savedmodel"))
  assert isinstance(model, graph_backend.GraphSavedModel)
  assert model.mode is Mode.TF1_COMPAT
  case = shared_fixtures.cases("tf2_keras_savedmodel", "call")[0]
  output = model(case.inputs()["inputs"], training=False)
  signature_case = shared_fixtures.cases("tf2_keras_savedmodel",
                                         "signature")[0]
  signature_out = model.signatures["serving_default"](
      **{k: tf.constant(v) for k, v in signature_case.inputs().items()})
  with tf.compat.v1.Session() as session:
    _initialize(session)
    case.assert_outputs({"output": session.run(output)})
    signature_case.assert_outputs(session.run(signature_out))
    (losses_case,) = shared_fixtures.cases("tf2_keras_savedmodel",
                                           "regularization_losses")
    np.testing.assert_allclose(session.run(model.regularization_losses),
                               losses_case.spec["values"], rtol=1e-5)


@tf1_compat
def test_initializers_restore_saved_values_and_tables(shared_fixtures):
  tf = _tf()
  path = shared_fixtures.path("tf2_text_vocab_asset")
  model = hub_adapter.load(path)
  case = shared_fixtures.cases("tf2_text_vocab_asset", "call")[0]
  output = model(case.inputs()["inputs"])
  saved = tf.train.load_checkpoint(
      os.path.join(path, "variables", "variables"))
  key = [k for k in saved.get_variable_to_shape_map()
         if k.startswith("embeddings/")][0]
  with tf.compat.v1.Session() as session:
    _initialize(session)
    case.assert_outputs({"output": session.run(output)})
    np.testing.assert_array_equal(session.run(model.variables[0]),
                                  saved.get_tensor(key))


@tf1_compat
def test_frozen_model_stays_out_of_training_collections(shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path("tf2_image_bn_reusable"))
  x = np.zeros((2, 8, 8, 3), np.float32)
  model(x, training=True)
  assert model.trainable_variables == []
  assert _collection("TRAINABLE_VARIABLES") == []
  assert _collection("REGULARIZATION_LOSSES") == []
  assert _collection("UPDATE_OPS") == []
  assert len(model.update_ops) == 1  # listed, not collected
  assert len(model.regularization_losses) == 2
  global_ids = {id(v) for v in _collection("GLOBAL_VARIABLES")}
  assert all(id(v) in global_ids for v in model.variables)


@tf1_compat
def test_fine_tune_with_tf1_optimizer(shared_fixtures):
  tf = _tf()
  model = hub_adapter.load(shared_fixtures.path("tf2_image_bn_reusable"),
                           trainable=True)
  trainable = sorted(v.name for v in _collection("TRAINABLE_VARIABLES"))
  assert trainable == ["bn1/beta:0", "bn1/gamma:0", "conv1/kernel:0",
                       "head/bias:0", "head/kernel:0"]
  assert len(_collection("REGULARIZATION_LOSSES")) == 2
  x = np.random.RandomState(0).rand(4, 8, 8, 3).astype(np.float32)
  train_output = model(x, training=True)
  infer_output = model(x, training=False)
  assert _collection("UPDATE_OPS") == model.update_ops
  assert len(model.update_ops) == 1  # only the training=True call
  loss = tf.reduce_mean(tf.square(train_output)) + tf.add_n(
      tf.compat.v1.losses.get_regularization_losses())
  with tf.control_dependencies(_collection("UPDATE_OPS")):
    train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
  moving_mean = _by_name(model, "bn1/moving_mean")
  kernel = _by_name(model, "conv1/kernel")
  with tf.compat.v1.Session() as session:
    _initialize(session)
    mean_before, kernel_before = session.run([moving_mean, kernel])
    session.run(infer_output)
    np.testing.assert_array_equal(session.run(moving_mean), mean_before)
    losses = [session.run([loss, train_op])[0] for _ in range(4)]
    assert losses[-1] < losses[0], losses
    assert not np.allclose(session.run(moving_mean), mean_before)
    assert not np.allclose(session.run(kernel), kernel_before)


@tf1_compat
def test_keras_savedmodel_fine_tunes_with_its_regularizer(shared_fixtures):
  tf = _tf()
  model = hub_adapter.load(shared_fixtures.path("tf2_keras_savedmodel"),
                           trainable=True)
  assert len(_collection("REGULARIZATION_LOSSES")) == 1
  x = np.random.RandomState(1).rand(8, 6).astype(np.float32)
  y = model(x, training=False)
  loss = tf.reduce_mean(tf.square(y - 1.0)) + tf.add_n(
      _collection("REGULARIZATION_LOSSES"))
  train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
  with tf.compat.v1.Session() as session:
    _initialize(session)
    losses = [session.run([loss, train_op])[0] for _ in range(4)]
  assert losses[-1] < losses[0], losses


@tf1_compat
def test_signatures_only_model_in_a_session(shared_fixtures):
  tf = _tf()
  model = hub_adapter.load(shared_fixtures.path("tf2_signatures_only"),
                           trainable=True)
  case = shared_fixtures.cases("tf2_signatures_only", "signature")[0]
  outputs = model(case.inputs())
  grads = tf.gradients(tf.reduce_sum(outputs["logits"]),
                       model.trainable_variables)
  assert len(grads) == 4 and all(g is not None for g in grads)
  with tf.compat.v1.Session() as session:
    _initialize(session)
    case.assert_outputs(session.run(outputs))


@tf1_compat
def test_plain_module_saved_in_graph_mode(tmp_path):
  tf = _tf()
  path = tf2_models.make_tiny(str(tmp_path / "tiny"))
  model = hub_adapter.load(path, trainable=True)
  assert sorted(v.name for v in model.trainable_variables) == ["b:0", "w:0"]
  result = model(tf2_models.INPUT, training=True)
  assert len(model.update_ops) == 1  # it writes the calls counter
  with tf.compat.v1.Session() as session:
    _initialize(session)
    np.testing.assert_allclose(session.run(result["y"]),
                               tf2_models.expected_y())


@tf1_compat
def test_calling_in_another_graph_is_an_error(shared_fixtures):
  tf = _tf()
  model = hub_adapter.load(shared_fixtures.path("tf2_text_vocab_asset"))
  with tf.Graph().as_default():
    with pytest.raises(errors.HubAdapterError, match="another tf.Graph"):
      model(np.array(["a"]))


@tf1_compat
def test_load_under_a_strategy_and_call_per_replica(shared_fixtures):
  tf = _tf()
  strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
  case = shared_fixtures.cases("tf2_image_bn_reusable", "call")[0]
  with strategy.scope():
    model = hub_adapter.load(shared_fixtures.path("tf2_image_bn_reusable"),
                             trainable=True)
    x = tf.constant(case.inputs()["inputs"])
    per_replica = strategy.run(lambda: model(x, training=False))
    output = strategy.experimental_local_results(per_replica)[0]
  with tf.compat.v1.Session() as session:
    _initialize(session)
    case.assert_outputs({"output": session.run(output)})


def test_graph_inside_the_tf2_session(shared_fixtures):
  tf = _tf()
  case = shared_fixtures.cases("tf2_image_bn_reusable", "call")[0]
  with tf.Graph().as_default():
    model = hub_adapter.load(shared_fixtures.path("tf2_image_bn_reusable"))
    assert isinstance(model, graph_backend.GraphSavedModel)
    output = model(case.inputs()["inputs"], training=False)
    with tf.compat.v1.Session() as session:
      _initialize(session)
      case.assert_outputs({"output": session.run(output)})
