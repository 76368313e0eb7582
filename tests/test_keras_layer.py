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
    x = case.inputs()["inputs"]
    out = layer(x) if training is None else layer(x, training=training)
    case.assert_outputs({"output": out})
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
  golden = np.load(f"{shared_fixtures.root}/{entry['golden']}")
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
