"""hub_adapter.KerasLayer: flavours, goldens, fine-tuning, TF1 modules, I/O.

Runs on every stack (Keras 3; tf_keras on TF 2.21; tf.keras on TF 2.15); a
few tests are flavour-specific (``requires``) and the last ones run in the
TF1 compat session (``tf1_compat``).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import fixtures
import hub_adapter as hub
from hub_adapter import runtime
from hub_adapter import support

TOL = {"rtol": 1e-5, "atol": 1e-5}
GOLDEN_APIS = ("call", "signature", "hub.load.signatures")


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


@pytest.fixture(scope="module")
def keras():
  return runtime.keras_module()


@pytest.fixture(scope="module")
def images():
  return np.random.RandomState(0).rand(16, 8, 8, 3).astype("float32")


def _path(name):
  return fixtures.locate().path(name)


def _values(variables):
  return {v.name: np.array(v.numpy()) for v in variables}


def _underlying(weight):
  """The tf.Variable behind a Keras weight (Keras 3 wraps it)."""
  value = getattr(weight, "value", None)
  tf = _tf()
  if isinstance(weight, tf.Variable):
    return weight
  return value


def _golden_params():
  shared = fixtures.locate()
  params = []
  for name in shared.names():
    for case in shared.cases(name):
      if case.spec["api"] in GOLDEN_APIS:
        params.append(pytest.param(name, case.id, id=f"{name}-{case.id}"))
  return params


# -- what the layer is --------------------------------------------------------

def test_is_a_layer_of_the_running_keras(keras):
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"))
  assert isinstance(layer, hub.KerasLayer)
  assert isinstance(layer, keras.layers.Layer)
  assert type(layer).__name__ == "KerasLayer"
  assert type(layer) is type(hub.KerasLayer(_path("tf2_text_vocab_asset")))


@pytest.mark.requires("keras3")
def test_under_keras3_it_is_a_keras3_layer():
  import keras  # pylint: disable=g-import-not-at-top
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"))
  assert keras.__version__.startswith("3.")
  assert isinstance(layer, keras.layers.Layer)
  assert isinstance(layer.weights[0], keras.Variable)


@pytest.mark.requires("tf_keras", "tf221")
def test_with_legacy_keras_it_is_a_tf_keras_layer():
  import tf_keras  # pylint: disable=g-import-not-at-top
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"))
  assert isinstance(layer, tf_keras.layers.Layer)


@pytest.mark.requires("tf215")
def test_on_tf215_it_is_a_tf_keras_2_15_layer():
  tf = _tf()
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"))
  import keras  # pylint: disable=g-import-not-at-top
  assert isinstance(layer, tf.keras.layers.Layer)
  assert keras.__version__.startswith("2.15")


def test_weights_are_the_saved_models_own_variables():
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"), trainable=True)
  raw = layer.resolved_object
  assert [id(_underlying(w)) for w in layer.weights] == [
      id(v) for v in list(raw.trainable_variables) + [
          v for v in raw.variables
          if id(v) not in {id(t) for t in raw.trainable_variables}]]
  assert len(layer.trainable_weights) == 5
  assert len(layer.non_trainable_weights) == 2
  raw.variables[0].assign_add(np.ones(raw.variables[0].shape, "float32"))
  np.testing.assert_array_equal(np.array(layer.weights[0].numpy()),
                                raw.variables[0].numpy())


def test_sequential_and_functional_models(keras, images, shared_fixtures):
  case = shared_fixtures.cases("tf2_image_bn_reusable", "call")[0]
  x = case.inputs()["inputs"]
  sequential = keras.Sequential([
      keras.Input((8, 8, 3)), hub.KerasLayer(_path("tf2_image_bn_reusable"))])
  with_input_shape = keras.Sequential([hub.KerasLayer(
      _path("tf2_image_bn_reusable"), input_shape=(8, 8, 3), name="hub")])
  inputs = keras.Input((8, 8, 3))
  functional = keras.Model(
      inputs, hub.KerasLayer(_path("tf2_image_bn_reusable"))(inputs))
  for model in (sequential, with_input_shape, functional):
    assert tuple(model.outputs[0].shape) == (None, 5)
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               case.outputs()["output"], **TOL)


@pytest.mark.requires("tf_keras")
def test_tf_keras_sequential_with_input_shape_and_string_dtype(keras):
  tf = _tf()
  model = keras.Sequential([hub.KerasLayer(
      _path("tf1_text_embedding"), input_shape=[], dtype=tf.string)])
  out = model.predict(np.array(["hello world", "the quick fox"]), verbose=0)
  assert out.shape == (2, 8)


# -- parity with the goldens ---------------------------------------------------

@pytest.mark.parametrize("name,case_id", _golden_params())
def test_outputs_equal_goldens(shared_fixtures, name, case_id):
  case = next(c for c in shared_fixtures.cases(name) if c.id == case_id)
  spec = case.spec
  if spec["api"] == "call":
    training = spec.get("training")
    layer = hub.KerasLayer(shared_fixtures.path(name),
                           trainable=bool(training))
    x = case.call_input()
    out = layer(x) if training is None else layer(x, training=training)
    case.assert_call_outputs(out)
    state = _values(layer.model.variables)
    for key, want in case.state_after().items():
      np.testing.assert_allclose(state[key], want, err_msg=key, **TOL)
  else:
    layer = hub.KerasLayer(shared_fixtures.path(name), tags=spec.get("tags"),
                           signature=spec["signature"],
                           signature_outputs_as_dict=True)
    case.assert_outputs(layer(case.inputs()))


def test_regularization_losses_equal_goldens(shared_fixtures, keras, images):
  for name in ("tf2_image_bn_reusable", "tf2_keras_savedmodel"):
    case = shared_fixtures.cases(name, "regularization_losses")[0]
    layer = hub.KerasLayer(shared_fixtures.path(name), trainable=True)
    shape = (4, 8, 8, 3) if name == "tf2_image_bn_reusable" else (4, 6)
    layer(np.zeros(shape, "float32"))
    np.testing.assert_allclose([float(l) for l in layer.losses],
                               case.spec["values"], **TOL)


# -- fine-tuning TF2 SavedModels ----------------------------------------------

def _head_model(keras, layer, shape, units=2):
  inputs = keras.Input(shape)
  outputs = keras.layers.Dense(
      units, kernel_initializer=keras.initializers.Constant(0.1))(
          layer(inputs))
  model = keras.Model(inputs, outputs)
  model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
  return model


@pytest.fixture(scope="module")
def targets():
  return np.random.RandomState(1).rand(16, 2).astype("float32")


def test_fit_trains_and_moves_statistics_only_in_fit(keras, images, targets):
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"), trainable=True)
  model = _head_model(keras, layer, (8, 8, 3))
  raw = layer.resolved_object
  moving = [v for v in raw.variables if "moving" in v.name]
  start = _values(raw.variables)
  model.predict(images, verbose=0)
  model.evaluate(images, targets, verbose=0)
  assert all(np.array_equal(start[k], v) for k, v in
             _values(raw.variables).items())
  history = model.fit(images, targets, epochs=4, batch_size=8, verbose=0,
                      shuffle=False)
  assert history.history["loss"][-1] < history.history["loss"][0]
  after = _values(raw.variables)
  for v in raw.variables:
    assert not np.allclose(after[v.name], start[v.name]), v.name
  assert len(moving) == 2


def test_training_reaches_call_only_when_trainable(shared_fixtures):
  tf = _tf()
  false_case = shared_fixtures.cases("tf2_image_bn_reusable", "call")[0]
  x = false_case.inputs()["inputs"]
  frozen = hub.KerasLayer(_path("tf2_image_bn_reusable"))
  np.testing.assert_allclose(frozen(x, training=True),
                             false_case.outputs()["output"], **TOL)
  # Keras dropout is random: trainable + training=True differs run to run.
  keras_model = hub.KerasLayer(_path("tf2_keras_savedmodel"), trainable=True)
  x6 = np.ones((64, 6), "float32")
  trained = [np.array(keras_model(x6, training=True)) for _ in range(2)]
  assert not np.allclose(trained[0], trained[1])
  np.testing.assert_allclose(keras_model(x6, training=False),
                             keras_model(tf.constant(x6)), **TOL)


def test_regularization_losses_join_the_loss(keras, images, targets):
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"), trainable=True)
  model = _head_model(keras, layer, (8, 8, 3))
  mse = float(np.mean(np.square(model.predict(images, verbose=0) - targets)))
  reg = float(sum(f() for f in layer.resolved_object.regularization_losses))
  model(images)
  assert len(model.losses) == 2
  np.testing.assert_allclose(float(sum(model.losses)), reg, **TOL)
  loss = model.evaluate(images, targets, verbose=0, batch_size=16)
  np.testing.assert_allclose(loss, mse + reg, rtol=1e-4)


def test_frozen_layer_keeps_its_weights_and_adds_no_loss(keras, images,
                                                         targets):
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"))
  model = _head_model(keras, layer, (8, 8, 3))
  assert not layer.trainable_weights and len(layer.weights) == 7
  start = _values(layer.resolved_object.variables)
  head = np.array(model.layers[-1].kernel.numpy())
  model.fit(images, targets, epochs=2, batch_size=8, verbose=0)
  for k, v in _values(layer.resolved_object.variables).items():
    np.testing.assert_array_equal(v, start[k], err_msg=k)
  assert not np.allclose(model.layers[-1].kernel.numpy(), head)
  model(images)
  assert float(sum(float(l) for l in model.losses)) == 0.0


def test_setting_trainable_after_construction(keras, images, targets):
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"))
  model = _head_model(keras, layer, (8, 8, 3))
  raw = layer.resolved_object
  layer.trainable = True
  assert len(layer.trainable_weights) == 5
  model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
  start = _values(raw.trainable_variables)
  model.fit(images, targets, epochs=1, batch_size=8, verbose=0)
  changed = _values(raw.trainable_variables)
  assert all(not np.allclose(changed[k], start[k]) for k in start)
  layer.trainable = False
  assert not layer.trainable_weights
  model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
  model.fit(images, targets, epochs=1, batch_size=8, verbose=0)
  for k, v in _values(raw.variables).items():
    if k in changed:
      np.testing.assert_array_equal(v, changed[k], err_msg=k)


def test_fine_tunes_a_keras_savedmodel(keras, shared_fixtures):
  layer = hub.KerasLayer(_path("tf2_keras_savedmodel"), trainable=True)
  model = _head_model(keras, layer, (6,))
  x = np.random.RandomState(2).rand(32, 6).astype("float32")
  y = np.random.RandomState(3).rand(32, 2).astype("float32")
  raw = layer.resolved_object
  start = _values(raw.variables)
  history = model.fit(x, y, epochs=5, batch_size=8, verbose=0, shuffle=False)
  assert history.history["loss"][-1] < history.history["loss"][0]
  after = _values(raw.variables)
  for name in shared_fixtures.entry("tf2_keras_savedmodel")[
      "moving_statistics"]:
    assert not np.allclose(after[name], start[name]), name
  model(x)
  np.testing.assert_allclose(
      [float(l) for l in model.losses],
      [float(f()) for f in raw.regularization_losses], **TOL)


# -- TF1 Hub modules in TF2 ---------------------------------------------------

def test_tf1_text_embedding_picks_default_signature_and_output(
    shared_fixtures, keras):
  tf = _tf()
  case = shared_fixtures.cases("tf1_text_embedding", "hub.load.signatures")[0]
  layer = hub.KerasLayer(_path("tf1_text_embedding"))
  assert layer.model.signature == "default"
  # The two partitions of "embeddings", frozen and readable (the graph-side
  # copies tf.saved_model.load also lists are left out).
  assert not layer.trainable_weights
  assert sorted(np.array(w.numpy()).shape for w in layer.weights) == [
      (11, 8), (11, 8)]
  inputs = keras.Input(shape=(), dtype=tf.string)
  model = keras.Model(inputs, layer(inputs))
  assert tuple(model.output.shape) == (None, 8)
  np.testing.assert_allclose(
      model(tf.constant(case.inputs()["sentences"])),
      case.outputs()["default"], **TOL)


def test_tf1_image_signatures_and_output_keys(shared_fixtures):
  path = _path("tf1_image_feature_vector")
  case = next(c for c in shared_fixtures.cases(
      "tf1_image_feature_vector", "hub.load.signatures")
              if c.spec["signature"] == "image_feature_vector"
              and not c.spec["tags"])
  x = case.inputs()["images"]
  want = case.outputs()
  auto = hub.KerasLayer(path)
  assert auto.model.signature == "default"
  pre_logits = hub.KerasLayer(path, signature="image_feature_vector",
                              output_key="pre_logits")
  np.testing.assert_allclose(pre_logits(x), want["pre_logits"], **TOL)
  as_dict = hub.KerasLayer(path, signature="image_feature_vector",
                           signature_outputs_as_dict=True)
  out = as_dict(x)
  assert sorted(out) == ["default", "feature_map", "pre_logits"]
  np.testing.assert_allclose(out["feature_map"], want["feature_map"], **TOL)
  no_key = hub.KerasLayer(path, signature="image_feature_vector")
  np.testing.assert_allclose(no_key(x), want["default"], **TOL)


def test_tf1_tokens_only_signature_is_picked(shared_fixtures):
  case = shared_fixtures.cases("tf1_tokens_signature_only",
                               "hub.load.signatures")[0]
  layer = hub.KerasLayer(_path("tf1_tokens_signature_only"))
  assert layer.model.signature == "tokens"
  np.testing.assert_allclose(layer(case.inputs()), case.outputs()["default"],
                             **TOL)
  with pytest.raises(hub.SignatureError, match="tokens"):
    hub.KerasLayer(_path("tf1_tokens_signature_only"), signature="default")


def test_tf1_module_trainable_is_refused_at_construction():
  cell = support.lookup(hub.Format.TF1_HUB, hub.Operation.FINE_TUNE,
                        hub.Mode.TF2)
  with pytest.raises(hub.UnsupportedOperationError) as info:
    hub.KerasLayer(_path("tf1_image_feature_vector"), trainable=True)
  assert info.value.reason == cell.reason
  assert info.value.remedy == cell.remedy


def test_tf1_module_made_trainable_later_is_refused_at_call(images):
  layer = hub.KerasLayer(_path("tf1_image_feature_vector"))
  assert not layer.trainable_weights and layer.weights
  layer.trainable = True
  with pytest.raises(hub.UnsupportedOperationError, match="after"):
    layer(images)


# -- inputs, outputs, arguments, shapes ---------------------------------------

def test_arguments_feed_extra_signature_inputs(shared_fixtures):
  case = next(c for c in shared_fixtures.cases(
      "tf1_image_feature_vector", "hub.load.signatures")
              if c.spec["signature"] == "image_feature_vector_with_bn_hparams"
              and not c.spec["tags"])
  inputs = case.inputs()
  layer = hub.KerasLayer(
      _path("tf1_image_feature_vector"),
      signature="image_feature_vector_with_bn_hparams",
      arguments={"batch_norm_momentum": float(inputs["batch_norm_momentum"])},
      output_key="pre_logits")
  np.testing.assert_allclose(layer(inputs["images"]),
                             case.outputs()["pre_logits"], **TOL)
  assert layer.get_config()["arguments"] == {
      "batch_norm_momentum": float(inputs["batch_norm_momentum"])}


def test_dict_inputs_and_outputs_in_a_functional_model(keras,
                                                       shared_fixtures):
  case = shared_fixtures.cases("tf2_signatures_only", "signature")[0]
  layer = hub.KerasLayer(_path("tf2_signatures_only"))
  assert layer.model.signature == "serving_default"
  inputs = {"features": keras.Input((4,), name="features"),
            "context": keras.Input((2,), name="context")}
  outputs = layer(inputs)
  assert sorted(outputs) == ["logits", "probabilities"]
  model = keras.Model(inputs, outputs)
  got = model.predict(case.inputs(), verbose=0)
  case.assert_outputs(got)
  logits = hub.KerasLayer(_path("tf2_signatures_only"), signature="embed",
                          output_key="embedding")
  embed = next(c for c in shared_fixtures.cases("tf2_signatures_only")
               if c.spec["signature"] == "embed")
  np.testing.assert_allclose(logits(embed.inputs()),
                             embed.outputs()["embedding"], **TOL)


def test_string_inputs_to_a_tf2_text_model(keras, shared_fixtures):
  tf = _tf()
  case = shared_fixtures.cases("tf2_text_vocab_asset", "call")[0]
  inputs = keras.Input(shape=(), dtype=tf.string)
  model = keras.Model(
      inputs, hub.KerasLayer(_path("tf2_text_vocab_asset"))(inputs))
  np.testing.assert_allclose(model(tf.constant(case.inputs()["inputs"])),
                             case.outputs()["output"], **TOL)


def test_output_shape_and_compute_output_shape(keras):
  text = hub.KerasLayer(_path("tf2_text_vocab_asset"), output_shape=[8])
  assert tuple(text.compute_output_shape((None,))) == (None, 8)
  assert tuple(text.compute_output_shape((3,))) == (3, 8)
  image = hub.KerasLayer(_path("tf2_image_bn_reusable"))
  assert tuple(image.compute_output_shape((None, 8, 8, 3))) == (None, 5)
  dict_shapes = hub.KerasLayer(
      _path("tf2_signatures_only"),
      output_shape={"logits": [3], "probabilities": [3]})
  got = dict_shapes.compute_output_shape(
      {"features": (None, 4), "context": (None, 2)})
  assert {k: tuple(v) for k, v in got.items()} == {
      "logits": (None, 3), "probabilities": (None, 3)}
  wrong = hub.KerasLayer(_path("tf2_image_bn_reusable"), output_shape=[7])
  with pytest.raises(Exception, match="7"):
    wrong(np.zeros((2, 8, 8, 3), "float32"))


def test_output_shape_is_set_on_symbolic_outputs(keras):
  tf = _tf()
  inputs = keras.Input(shape=(), dtype=tf.string)
  layer = hub.KerasLayer(_path("tf1_text_embedding"), output_shape=(8,))
  assert tuple(layer(inputs).shape) == (None, 8)


# -- config -------------------------------------------------------------------

def test_config_round_trip(keras, shared_fixtures):
  case = next(c for c in shared_fixtures.cases(
      "tf1_image_feature_vector", "hub.load.signatures")
              if c.spec["signature"] == "image_feature_vector_with_bn_hparams"
              and not c.spec["tags"])
  momentum = float(case.inputs()["batch_norm_momentum"])
  layer = hub.KerasLayer(
      _path("tf1_image_feature_vector"), tags=set(),
      signature="image_feature_vector_with_bn_hparams",
      arguments={"batch_norm_momentum": momentum}, output_key="pre_logits",
      output_shape=[4], name="features")
  config = layer.get_config()
  json.dumps(config)
  assert config["handle"] == _path("tf1_image_feature_vector")
  assert config["signature"] == "image_feature_vector_with_bn_hparams"
  assert config["output_key"] == "pre_logits"
  assert config["output_shape"] == [4]
  assert config["tags"] == []
  assert config["name"] == "features"
  for cls in (type(layer), hub.KerasLayer):
    again = cls.from_config(config)
    assert type(again) is type(layer)
    assert again.get_config() == config
    np.testing.assert_allclose(again(case.inputs()["images"]),
                               case.outputs()["pre_logits"], **TOL)


def test_bad_arguments_are_refused_clearly():
  with pytest.raises(hub.InputError, match="string handle"):
    hub.KerasLayer(42)
  with pytest.raises(hub.InputError, match="JSON"):
    hub.KerasLayer(_path("tf2_image_bn_reusable"),
                   arguments={"x": object()})
  with pytest.raises(hub.SignatureError):
    hub.KerasLayer(_path("tf2_signatures_only"), signature="nope")


# -- TF1 compat mode (graph mode, tf_keras) -----------------------------------

@pytest.mark.tf1_compat
def test_graph_mode_fit_of_a_tf2_savedmodel(shared_fixtures):
  tf = _tf()
  keras = runtime.keras_module()
  assert runtime.keras_flavour() == runtime.TF_KERAS
  case = shared_fixtures.cases("tf2_image_bn_reusable", "call")[0]
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"), trainable=True)
  assert isinstance(layer, keras.layers.Layer)
  inputs = keras.Input((8, 8, 3))
  features = layer(inputs)
  model = keras.Model(inputs, keras.layers.Dense(
      2, kernel_initializer=keras.initializers.Constant(0.1))(features))
  model.compile(optimizer=tf.compat.v1.train.GradientDescentOptimizer(0.05),
                loss="mse")
  images = np.random.RandomState(0).rand(16, 8, 8, 3).astype("float32")
  targets = np.random.RandomState(1).rand(16, 2).astype("float32")
  raw = layer.resolved_object
  variables = list(raw.variables)
  # Before training, outputs equal the eager goldens and predict moves
  # nothing.
  np.testing.assert_allclose(
      keras.Model(inputs, features).predict(case.inputs()["inputs"],
                                            verbose=0),
      case.outputs()["output"], **TOL)
  start = keras.backend.batch_get_value(variables)
  model.predict(images, verbose=0)
  for v, a, b in zip(variables, start,
                     keras.backend.batch_get_value(variables)):
    np.testing.assert_array_equal(a, b, err_msg=v.name)
  history = model.fit(images, targets, epochs=4, batch_size=8, verbose=0,
                      shuffle=False)
  assert history.history["loss"][-1] < history.history["loss"][0]
  for v, a, b in zip(variables, start,
                     keras.backend.batch_get_value(variables)):
    assert not np.allclose(a, b), v.name
  assert len(model.losses) == 2


@pytest.mark.tf1_compat
def test_graph_mode_frozen_tf1_module_inference(shared_fixtures):
  tf = _tf()
  case = shared_fixtures.cases("tf1_text_embedding", "hub.Module")[0]
  sentences = tf.compat.v1.placeholder(tf.string, [None])
  layer = hub.KerasLayer(_path("tf1_text_embedding"))
  embeddings = layer(sentences)
  assert embeddings.shape.as_list() == [None, 8]
  with tf.compat.v1.Session() as session:
    session.run([tf.compat.v1.global_variables_initializer(),
                 tf.compat.v1.tables_initializer()])
    got = session.run(embeddings,
                      {sentences: case.inputs()["sentences"]})
  np.testing.assert_allclose(got, case.outputs()["default"], **TOL)


@pytest.mark.tf1_compat
def test_graph_mode_fine_tuning_a_tf1_module_matches_hub_module(
    shared_fixtures):
  """One Keras step equals the recorded hub.Module fine-tuning step."""
  tf = _tf()
  keras = runtime.keras_module()
  entry = shared_fixtures.entry("tf1_image_feature_vector")
  record = entry["finetune"]
  golden = shared_fixtures.golden("tf1_image_feature_vector")
  images = golden[record["input"]["key"]]
  layer = hub.KerasLayer(_path("tf1_image_feature_vector"), trainable=True)
  inputs = keras.Input((8, 8, 3))
  model = keras.Model(inputs, layer(inputs))
  model.compile(optimizer=tf.compat.v1.train.GradientDescentOptimizer(0.1),
                loss=lambda y_true, y_pred: tf.reduce_mean(
                    tf.square(y_pred), axis=-1))
  assert len(layer.trainable_weights) == len(record["trainable_variables"])
  assert len(model.losses) == record["num_regularization_losses"]
  assert len(model.updates) == record["num_update_ops"]
  history = model.fit(images, np.zeros((len(images), 6), "float32"),
                      batch_size=len(images), epochs=1, verbose=0,
                      shuffle=False)
  tol = record["tolerance"]
  np.testing.assert_allclose(history.history["loss"][0],
                             record["loss_before"], **tol)
  variable_map = layer.model.variable_map
  for name, spec in record["variables_after"].items():
    variable = variable_map[name]
    value = keras.backend.batch_get_value(
        variable if isinstance(variable, list) else [variable])
    np.testing.assert_allclose(np.concatenate([v.ravel() for v in value]),
                               golden[spec["key"]].ravel(), err_msg=name,
                               **tol)


# -- tensorflow_hub parity: its sentences first, its exception types ----------
# Tiny models made here: a TF2 SavedModel whose __call__ adds one (with a
# serving_default signature), one with an extra hyper-parameter input and no
# variables, and a TF1 Hub module created as with tensorflow_hub 0.15.

def _plus_one(path):
  tf = _tf()
  obj = tf.train.Checkpoint()
  obj.v = tf.Variable(1.0)
  obj.__call__ = tf.function(
      lambda x: x + obj.v,
      input_signature=[tf.TensorSpec(None, tf.float32)])
  tf.saved_model.save(obj, path)
  return path


def _no_variables(path):
  tf = _tf()
  obj = tf.train.Checkpoint()
  obj.__call__ = tf.function(
      lambda x, a=1.0: a * x,
      input_signature=[tf.TensorSpec([None, 1], tf.float32),
                       tf.TensorSpec([], tf.float32)])
  tf.saved_model.save(obj, path)
  return path


def _tf1_plus_one(path):
  tf = _tf()

  def module_fn():
    x = tf.compat.v1.placeholder(tf.float32, name="x")
    w = tf.compat.v1.get_variable("w", initializer=1.0)
    hub.add_signature(inputs=x, outputs={"default": x + w, "twice": 2 * x})

  spec = hub.create_module_spec(module_fn)
  with tf.compat.v1.Graph().as_default():
    module = hub.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      module.export(path, session)
  return path


@pytest.fixture(scope="module")
def parity_models(tmp_path_factory):
  root = tmp_path_factory.mktemp("parity")
  return {"tf2": _plus_one(str(root / "tf2")),
          "bare": _no_variables(str(root / "bare")),
          "tf1": _tf1_plus_one(str(root / "tf1"))}


OUTPUTS_SENTENCE = ("When using a signature, either output_key or "
                    "signature_outputs_as_dict=True should be set.")


@pytest.mark.parametrize("kwargs", [
    {"signature": "serving_default"},
    {"signature": "serving_default", "output_key": "output_0",
     "signature_outputs_as_dict": True},
])
def test_signature_output_rules_keep_tensorflow_hubs_sentence(parity_models,
                                                              kwargs):
  with pytest.raises(ValueError) as info:
    hub.KerasLayer(parity_models["tf2"], **kwargs)
  assert isinstance(info.value, hub.SignatureError)
  assert str(info.value).startswith(OUTPUTS_SENTENCE + "\n")
  assert "Fix: " in str(info.value)  # Then hub_adapter's remedy.


def test_outputs_as_dict_without_a_signature_keeps_the_sentence(
    parity_models):
  with pytest.raises(ValueError) as info:
    hub.KerasLayer(parity_models["tf2"], signature_outputs_as_dict=True)
  assert str(info.value).startswith(
      "signature_outputs_as_dict is only valid if specifying a signature "
      "(or using a legacy TF1 Hub format).")


def test_tf1_module_defaults_and_its_one_forbidden_combination(
    parity_models):
  x = np.array([1.0, 2.0], np.float32)
  np.testing.assert_allclose(hub.KerasLayer(parity_models["tf1"])(x),
                             [2.0, 3.0])
  both = hub.KerasLayer(parity_models["tf1"], signature_outputs_as_dict=True)
  np.testing.assert_allclose(both(x)["twice"], [2.0, 4.0])
  with pytest.raises(hub.SignatureError) as info:
    hub.KerasLayer(parity_models["tf1"], output_key="twice",
                   signature_outputs_as_dict=True)
  assert str(info.value).startswith(OUTPUTS_SENTENCE)


def test_training_a_signature_is_refused_as_tensorflow_hub_does(
    parity_models):
  sentence = ("Setting hub.KerasLayer.trainable = True is unsupported when "
              "calling a SavedModel signature.")
  with pytest.raises(ValueError) as info:  # At construction ...
    hub.KerasLayer(parity_models["tf2"], signature="serving_default",
                   signature_outputs_as_dict=True, trainable=True)
  assert isinstance(info.value, hub.UnsupportedOperationError)
  assert str(info.value).startswith(sentence + "\n")
  layer = hub.KerasLayer(parity_models["tf2"], signature="serving_default",
                         signature_outputs_as_dict=True)
  np.testing.assert_allclose(layer(np.float32(10.0))["output_0"], 11.0)
  layer.trainable = True
  with pytest.raises(ValueError, match="trainable.*=.*True.*unsupported"):
    layer(np.float32(10.0))  # ... and when made trainable later.


def test_training_a_tf1_module_in_tf2_is_a_value_error_too(parity_models):
  with pytest.raises(ValueError) as info:
    hub.KerasLayer(parity_models["tf1"], trainable=True)
  assert isinstance(info.value, hub.UnsupportedOperationError)
  assert isinstance(info.value, NotImplementedError)
  assert str(info.value).startswith(
      "Setting hub.KerasLayer.trainable = True is unsupported when loading "
      "from the TF1 Hub format.\n")
  layer = hub.KerasLayer(parity_models["tf1"])
  layer.trainable = True
  with pytest.raises(ValueError, match="trainable.*=.*True.*unsupported"):
    layer(np.float32(1.0))


def test_a_trainable_layer_without_trainable_weights_logs_once(
    parity_models, caplog):
  layer = hub.KerasLayer(parity_models["bare"], trainable=True,
                         arguments={"a": 3.0})
  with caplog.at_level("ERROR"):
    np.testing.assert_allclose(layer(np.array([[10.0]], np.float32)),
                               [[30.0]])
    layer(np.array([[10.0]], np.float32))
  errors_logged = [r for r in caplog.records if r.levelname == "ERROR"]
  assert len(errors_logged) == 1
  assert errors_logged[0].getMessage().startswith(
      "hub.KerasLayer is trainable but has zero trainable weights.")
  caplog.clear()
  with caplog.at_level("ERROR"):  # Weights to train: nothing logged.
    hub.KerasLayer(parity_models["tf2"], trainable=True)(np.float32(1.0))
  assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_output_shape_under_tensorflow_hubs_private_name(parity_models):
  with_shape = hub.KerasLayer(parity_models["bare"], output_shape=[1])
  assert with_shape._output_shape == (1,)  # pylint: disable=protected-access
  again = hub.KerasLayer.from_config(
      json.loads(json.dumps(with_shape.get_config())))
  assert again._output_shape == with_shape._output_shape  # pylint: disable=protected-access
  assert not hasattr(hub.KerasLayer(parity_models["bare"]), "_output_shape")


def test_a_handle_of_the_wrong_type_keeps_tensorflow_hubs_sentence():
  with pytest.raises(ValueError, match="^Expected a string, got 42"):
    hub.KerasLayer(42)
  with pytest.raises(ValueError, match="^Expected a string, got 42"):
    hub.load(42)


# -- sparse and ragged inputs of TF1 signatures ---------------------------------

COMPOSITE = "tf1_sparse_ragged_inputs"


def _composite_case(shared_fixtures, case_id):
  return next(c for c in shared_fixtures.cases(COMPOSITE) if c.id == case_id)


def test_sparse_and_ragged_inputs_called_directly(shared_fixtures):
  tf = _tf()
  sparse_case = _composite_case(shared_fixtures, "tf2_hubload_default_0")
  x = sparse_case.inputs()
  sparse = tf.SparseTensor(x["ids_indices"], x["ids_values"],
                           x["ids_dense_shape"])
  layer = hub.KerasLayer(shared_fixtures.path(COMPOSITE))
  np.testing.assert_allclose(layer(sparse), sparse_case.outputs()["default"],
                             **TOL)
  ragged_case = _composite_case(shared_fixtures, "tf2_hubload_ragged_0")
  x = ragged_case.inputs()
  ragged = tf.RaggedTensor.from_row_splits(x["ids_component_0"],
                                           x["ids_component_1"])
  layer = hub.KerasLayer(shared_fixtures.path(COMPOSITE), signature="ragged",
                         output_key="default")
  np.testing.assert_allclose(layer(ragged), ragged_case.outputs()["default"],
                             **TOL)


def test_sparse_and_ragged_keras_inputs_in_functional_models(
    shared_fixtures, keras):
  tf = _tf()
  sparse_case = _composite_case(shared_fixtures, "tf2_hubload_default_0")
  x = sparse_case.inputs()
  sparse = tf.SparseTensor(x["ids_indices"], x["ids_values"],
                           x["ids_dense_shape"])
  inputs = keras.Input(shape=(None,), sparse=True, dtype="int64")
  model = keras.Model(inputs,
                      hub.KerasLayer(shared_fixtures.path(COMPOSITE))(inputs))
  np.testing.assert_allclose(model(sparse), sparse_case.outputs()["default"],
                             **TOL)
  ragged_case = _composite_case(shared_fixtures, "tf2_hubload_ragged_1")
  x = ragged_case.inputs()
  ragged = tf.RaggedTensor.from_row_splits(x["ids_component_0"],
                                           x["ids_component_1"])
  inputs = keras.Input(shape=(None,), ragged=True, dtype="int64")
  layer = hub.KerasLayer(shared_fixtures.path(COMPOSITE), signature="ragged",
                         output_key="default")
  model = keras.Model(inputs, layer(inputs))
  np.testing.assert_allclose(model(ragged), ragged_case.outputs()["default"],
                             **TOL)


def test_dense_input_where_sparse_is_declared_is_an_input_error(
    shared_fixtures):
  layer = hub.KerasLayer(shared_fixtures.path(COMPOSITE))
  with pytest.raises(hub.InputError) as e:
    layer(np.array([[1, 2]], np.int64))
  assert "Input 'ids'" in str(e.value)
  assert "declares a tf.SparseTensor" in str(e.value)
