"""hub_adapter.KerasLayer on Keras 3's JAX backend (``KERAS_BACKEND=jax``).

Runs only where Keras 3 runs on JAX (the ``tf221-jax`` tox env): weights as
JAX arrays, inference equal to the TensorFlow backend's (the goldens were
recorded with TensorFlow), fine-tuning with and without ``jit_compile``
compared step for step with the TensorFlow backend in another process,
batch-norm statistics, regularization losses, ``.keras`` files, ``predict``,
a hand-written ``jax.grad`` step, and what is refused (and why).
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fixtures
import hub_adapter as hub
from hub_adapter import backend_support
from hub_adapter import errors

pytestmark = pytest.mark.requires("jax")

TOL = {"rtol": 1e-5, "atol": 1e-5}
# Same model, different compilers (XLA vs TensorFlow kernels), 4 SGD steps.
STEP_TOL = {"rtol": 1e-4, "atol": 2e-5}
WORKER = os.path.join(os.path.dirname(__file__), "jax_backend_worker.py")
BN = "tf2_image_bn_reusable"
KERAS_SM = "tf2_keras_savedmodel"


def _keras():
  import keras  # pylint: disable=g-import-not-at-top
  assert keras.backend.backend() == "jax"
  return keras


def _jax():
  import jax  # pylint: disable=g-import-not-at-top
  return jax


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _np(value):
  return np.asarray(_keras().ops.convert_to_numpy(value))


def _path(name):
  return fixtures.locate().path(name)


def _has(name):
  return name in fixtures.locate().fixtures


@pytest.fixture(scope="module")
def images():
  return np.random.RandomState(0).rand(16, 8, 8, 3).astype("float32")


@pytest.fixture(scope="module")
def targets():
  return np.random.RandomState(1).rand(16, 2).astype("float32")


def _head_model(layer, shape, jit_compile="auto"):
  keras = _keras()
  inputs = keras.Input(shape)
  outputs = keras.layers.Dense(
      2, kernel_initializer=keras.initializers.Constant(0.1))(layer(inputs))
  model = keras.Model(inputs, outputs)
  model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse",
                jit_compile=jit_compile)
  return model


def _jit_call(layer, inputs, training=False):
  """The layer under jax.jit, as Keras' JAX trainer calls it."""
  jax = _jax()

  @jax.jit
  def apply(trainable, non_trainable, x):
    return layer.stateless_call(trainable, non_trainable, x,
                                training=training)

  return apply([v.value for v in layer.trainable_variables],
               [v.value for v in layer.non_trainable_variables], inputs)


# -- what the layer is -----------------------------------------------------------

def test_the_layer_is_a_keras_layer_holding_jax_weights():
  keras, jax = _keras(), _jax()
  layer = hub.KerasLayer(_path(BN), trainable=True)
  assert isinstance(layer, hub.KerasLayer)
  assert isinstance(layer, keras.layers.Layer)
  assert type(layer).__mro__[1].__module__ == (
      "hub_adapter.keras_layers.jax_backend")
  raw = layer.resolved_object
  trainable_ids = {id(v) for v in raw.trainable_variables}
  expected = list(raw.trainable_variables) + [
      v for v in raw.variables if id(v) not in trainable_ids]
  assert len(layer.trainable_weights) == 5
  assert len(layer.non_trainable_weights) == 2
  for weight, variable in zip(layer.weights, expected):
    assert isinstance(weight.value, jax.Array)
    assert weight.trainable == variable.trainable
    np.testing.assert_array_equal(_np(weight), variable.numpy())
  frozen = hub.KerasLayer(_path(BN))
  assert not frozen.trainable_weights and len(frozen.weights) == 7
  assert frozen.supports_jit


# -- inference --------------------------------------------------------------------

def _golden_params():
  shared = fixtures.locate()
  params = []
  for name in (BN, KERAS_SM, "tf2_signatures_only", "tf2_bert_encoder"):
    if name not in shared.fixtures:
      continue
    for case in shared.cases(name):
      if case.spec["api"] in ("call", "signature"):
        for jit in (False, True):
          params.append(pytest.param(name, case.id, jit,
                                     id=f"{name}-{case.id}-jit{int(jit)}"))
  return params


def _case_inputs(case):
  inputs = case.inputs()
  if case.spec["api"] == "call" and case.spec.get("input_structure") != "dict":
    return inputs["inputs"]
  return inputs


def _assert_outputs(case, out, check_values=True):
  expected = case.outputs()
  if case.spec["api"] == "call" and case.spec.get(
      "output_structure") != "dict":
    out = {"output": out}
  out = {k: (np.stack([_np(t) for t in v]) if isinstance(v, list) else _np(v))
         for k, v in out.items()}
  for key, want in expected.items():
    assert out[key].shape == want.shape, key
    if check_values and case.spec.get("check", "allclose") == "allclose":
      np.testing.assert_allclose(out[key], want, err_msg=key, **TOL)


@pytest.mark.parametrize("name,case_id,jit", _golden_params())
def test_outputs_equal_the_tensorflow_goldens(shared_fixtures, name, case_id,
                                              jit):
  case = next(c for c in shared_fixtures.cases(name) if c.id == case_id)
  spec = case.spec
  training = spec.get("training")
  if spec["api"] == "call":
    layer = hub.KerasLayer(shared_fixtures.path(name),
                           trainable=bool(training))
  else:
    layer = hub.KerasLayer(shared_fixtures.path(name),
                           signature=spec["signature"],
                           signature_outputs_as_dict=True)
  x = _case_inputs(case)
  if jit:
    out, non_trainable = _jit_call(layer, x, training=bool(training))
    for variable, value in zip(layer.non_trainable_variables, non_trainable):
      variable.assign(value)
  else:
    out = layer(x, training=bool(training))
  # XLA's random bits differ from TensorFlow's kernels' (for the same
  # stateless seed), so dropout outputs are compared eagerly only.
  _assert_outputs(case, out, check_values=not (jit and training))
  state = {w.name: _np(w) for w in layer.weights}
  for key, want in case.state_after().items():
    np.testing.assert_allclose(state[key.split(":")[0].replace("/", "_")],
                               want, err_msg=key, **TOL)


def test_sequential_functional_and_predict(shared_fixtures):
  keras = _keras()
  case = shared_fixtures.cases(BN, "call")[0]
  x, want = case.inputs()["inputs"], case.outputs()["output"]
  sequential = keras.Sequential([keras.Input((8, 8, 3)),
                                 hub.KerasLayer(_path(BN))])
  inputs = keras.Input((8, 8, 3))
  functional = keras.Model(inputs, hub.KerasLayer(_path(BN))(inputs))
  for model in (sequential, functional):
    assert tuple(model.outputs[0].shape) == (None, 5)
    np.testing.assert_allclose(model.predict(x, verbose=0), want, **TOL)
    np.testing.assert_allclose(model.predict(x, batch_size=2, verbose=0),
                               want, **TOL)


def test_dict_inputs_and_outputs_in_a_functional_model(shared_fixtures):
  keras = _keras()
  case = next(c for c in shared_fixtures.cases("tf2_signatures_only")
              if c.id == "signature_serving_default")
  layer = hub.KerasLayer(_path("tf2_signatures_only"),
                         signature="serving_default",
                         signature_outputs_as_dict=True)
  inputs = {"features": keras.Input((4,), name="features"),
            "context": keras.Input((2,), name="context")}
  outputs = layer(inputs)
  assert sorted(outputs) == ["logits", "probabilities"]
  model = keras.Model(inputs, outputs)
  got = model.predict(case.inputs(), verbose=0)
  for key, want in case.outputs().items():
    np.testing.assert_allclose(got[key], want, err_msg=key, **TOL)


def test_output_shape_and_config_round_trip(shared_fixtures):
  case = shared_fixtures.cases(BN, "call")[0]
  x = case.inputs()["inputs"]
  layer = hub.KerasLayer(_path(BN), output_shape=[5], name="hub")
  assert layer.compute_output_shape((None, 8, 8, 3)) == (None, 5)
  again = type(layer).from_config(layer.get_config())
  np.testing.assert_allclose(_np(again(x)), case.outputs()["output"], **TOL)
  assert again.get_config() == layer.get_config()


# -- fine-tuning: the same steps as the TensorFlow backend -------------------------

@pytest.fixture(scope="module")
def backend_runs(tmp_path_factory):
  """The worker's fine-tuning run on each backend, each in its own process."""
  runs = {}
  for backend in ("tensorflow", "jax"):
    out = str(tmp_path_factory.mktemp(backend) / "run.npz")
    env = dict(os.environ, KERAS_BACKEND=backend)
    done = subprocess.run([sys.executable, WORKER, _path(BN), out], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    runs[backend] = dict(np.load(out))
  return runs


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_fit_takes_the_same_steps_as_the_tensorflow_backend(backend_runs,
                                                            jit):
  """jit_compile=True on both backends compiles with XLA (same random bits
  for the model's seeded dropout); False runs TensorFlow's kernels."""
  tf_run, jax_run = backend_runs["tensorflow"], backend_runs["jax"]
  prefix = f"jit{int(jit)}/"
  keys = sorted(k for k in tf_run if k.startswith(prefix))
  assert keys == sorted(k for k in jax_run if k.startswith(prefix))
  for key in keys:
    np.testing.assert_allclose(jax_run[key], tf_run[key], err_msg=key,
                               **STEP_TOL)
  loss = jax_run[prefix + "loss"]
  assert loss[-1] < loss[0]
  fresh = hub.KerasLayer(_path(BN), trainable=True)
  initial = [_np(w) for w in fresh.weights]
  weights = [k for k in keys if k.startswith(prefix + "weight")]
  for k, key in enumerate(weights[:len(initial)]):
    assert not np.allclose(jax_run[key], initial[k]), key  # all 7 moved
  assert any("moving_mean" in k for k in weights)
  np.testing.assert_allclose(jax_run[prefix + "reg_losses"],
                             fixtures.locate().cases(
                                 BN, "regularization_losses")[0].spec[
                                     "values"], **TOL)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_fit_fine_tunes_a_keras_savedmodel_with_dropout(shared_fixtures, jit):
  layer = hub.KerasLayer(_path(KERAS_SM), trainable=True)
  model = _head_model(layer, (6,), jit_compile=jit)
  assert model.jit_compile == jit
  x = np.random.RandomState(2).rand(32, 6).astype("float32")
  y = np.random.RandomState(3).rand(32, 2).astype("float32")
  start = [_np(w) for w in layer.weights]
  history = model.fit(x, y, epochs=5, batch_size=8, verbose=0, shuffle=False)
  assert history.history["loss"][-1] < history.history["loss"][0]
  for weight, before in zip(layer.weights, start):
    assert not np.allclose(_np(weight), before), weight.name
  # The tf_keras Dropout's random op draws from the layer's seed generator.
  assert layer._hub_seed_generator is not None  # pylint: disable=protected-access
  assert len(layer.variables) == len(layer.weights) + 1
  model(x)
  assert len(model.losses) == 1


def test_training_true_moves_statistics_as_tensorflow_does(shared_fixtures):
  for name in (BN, KERAS_SM):
    case = next(c for c in shared_fixtures.cases(name, "call")
                if c.spec.get("training"))
    x = case.inputs()["inputs"]
    frozen = hub.KerasLayer(_path(name))
    before = [_np(w) for w in frozen.weights]
    frozen(x, training=True)  # Frozen: training never reaches the model.
    for weight, value in zip(frozen.weights, before):
      np.testing.assert_array_equal(_np(weight), value)
    layer = hub.KerasLayer(_path(name), trainable=True)
    layer(x, training=False)
    for weight, value in zip(layer.weights, before):
      np.testing.assert_array_equal(_np(weight), value)
    layer(x, training=True)
    state = {w.name: _np(w) for w in layer.weights}
    assert case.state_after()
    for key, want in case.state_after().items():
      np.testing.assert_allclose(state[key.split(":")[0].replace("/", "_")],
                                 want, err_msg=key, **TOL)


def test_dropout_draws_new_masks_from_the_seed_generator():
  layer = hub.KerasLayer(_path(KERAS_SM), trainable=True)
  x = np.ones((64, 6), "float32")
  first, second = (_np(layer(x, training=True)) for _ in range(2))
  assert not np.allclose(first, second)
  np.testing.assert_allclose(_np(layer(x, training=False)),
                             _np(layer(x)), **TOL)
  # Same seed state, same mask: the step and its recomputation for the
  # gradient agree.
  trainable = [v.value for v in layer.trainable_variables]
  non_trainable = [v.value for v in layer.non_trainable_variables]
  once, _ = layer.stateless_call(trainable, non_trainable, x, training=True)
  twice, _ = layer.stateless_call(trainable, non_trainable, x, training=True)
  np.testing.assert_array_equal(_np(once), _np(twice))


def test_regularization_losses_join_the_loss(images, targets, shared_fixtures):
  layer = hub.KerasLayer(_path(BN), trainable=True)
  model = _head_model(layer, (8, 8, 3))
  model(images)
  want = shared_fixtures.cases(BN, "regularization_losses")[0].spec["values"]
  np.testing.assert_allclose([float(_np(l)) for l in model.losses], want,
                             **TOL)
  mse = float(np.mean(np.square(model.predict(images, verbose=0) - targets)))
  loss = model.evaluate(images, targets, verbose=0, batch_size=16)
  np.testing.assert_allclose(loss, mse + sum(want), rtol=1e-4)
  frozen = hub.KerasLayer(_path(BN))
  frozen(images)
  assert not frozen.losses


def test_setting_trainable_after_construction(images, targets):
  layer = hub.KerasLayer(_path(BN))
  model = _head_model(layer, (8, 8, 3))
  layer.trainable = True
  model.compile(optimizer=_keras().optimizers.SGD(0.05), loss="mse")
  start = [_np(w) for w in layer.trainable_weights]
  model.fit(images, targets, epochs=1, batch_size=8, verbose=0)
  moved = [_np(w) for w in layer.trainable_weights]
  assert all(not np.allclose(a, b) for a, b in zip(moved, start))
  layer.trainable = False
  model.compile(optimizer=_keras().optimizers.SGD(0.05), loss="mse")
  model.fit(images, targets, epochs=1, batch_size=8, verbose=0)
  for weight, value in zip(layer.weights[:5], moved):
    np.testing.assert_array_equal(_np(weight), value)


def test_a_custom_jax_grad_training_step(images, targets):
  """A hand-written jitted step: jax.value_and_grad over stateless_call."""
  jax = _jax()
  keras = _keras()
  layer = hub.KerasLayer(_path(BN), trainable=True)
  head = keras.layers.Dense(2)
  model = keras.Sequential([keras.Input((8, 8, 3)), layer, head])

  def loss_fn(trainable, non_trainable, x, y):
    pred, non_trainable = model.stateless_call(trainable, non_trainable, x,
                                               training=True)
    return keras.ops.mean(keras.ops.square(pred - y)), non_trainable

  @jax.jit
  def step(trainable, non_trainable, x, y):
    (loss, non_trainable), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(trainable, non_trainable, x, y)
    trainable = [w - 0.05 * g for w, g in zip(trainable, grads)]
    return loss, trainable, non_trainable, grads

  trainable = [v.value for v in model.trainable_variables]
  non_trainable = [v.value for v in model.non_trainable_variables]
  start = trainable + non_trainable
  losses = []
  for _ in range(5):
    loss, trainable, non_trainable, grads = step(trainable, non_trainable,
                                                 images, targets)
    losses.append(float(loss))
    assert all(float(jax.numpy.abs(g).max()) > 0 for g in grads)
  assert losses[-1] < losses[0]
  for before, after in zip(start, trainable + non_trainable):
    assert not np.allclose(np.asarray(before), np.asarray(after))


# -- saving ---------------------------------------------------------------------

def test_keras_file_round_trip_after_fine_tuning(tmp_path, images, targets):
  keras = _keras()
  layer = hub.KerasLayer(_path(BN), trainable=True)
  model = _head_model(layer, (8, 8, 3))
  model.fit(images, targets, epochs=1, batch_size=8, verbose=0)
  path = str(tmp_path / "model.keras")
  model.save(path)
  again = keras.models.load_model(path)  # Keras' default: safe mode.
  hub_layers = [l for l in again.layers if isinstance(l, hub.KerasLayer)]
  assert len(hub_layers) == 1
  for a, b in zip(model.weights, again.weights):
    np.testing.assert_array_equal(_np(a), _np(b), err_msg=a.path)
  np.testing.assert_allclose(again.predict(images, verbose=0),
                             model.predict(images, verbose=0), **TOL)
  history = again.fit(images, targets, epochs=2, batch_size=8, verbose=0)
  assert history.history["loss"][-1] < history.history["loss"][0]


# -- what is refused, and why -------------------------------------------------------

def _string_models():
  return [n for n in ("tf2_text_vocab_asset", "tf2_bert_preprocess")
          if _has(n)]


@pytest.mark.parametrize("name", _string_models())
def test_models_with_string_inputs_are_refused_at_construction(name):
  with pytest.raises(errors.UnsupportedBackendError) as caught:
    hub.KerasLayer(_path(name), trainable=True)
  error = caught.value
  assert isinstance(error, NotImplementedError)
  assert error.limit is backend_support.Limit.STRING_IO
  assert error.backend == "jax"
  entry = backend_support.lookup("jax", backend_support.Limit.STRING_IO)
  assert entry.remedy in str(error) and "tf.data" in entry.remedy


@pytest.fixture(scope="module")
def converted_tf1(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("converted") / "tf1_image")
  hub.convert(_path("tf1_image_feature_vector"), out)
  return out


def test_tf1_modules_are_refused_until_converted(converted_tf1,
                                                 shared_fixtures, images):
  with pytest.raises(errors.UnsupportedBackendError) as caught:
    hub.KerasLayer(_path("tf1_image_feature_vector"))
  assert caught.value.limit is backend_support.Limit.TF1_HUB
  assert "hub-adapter convert" in str(caught.value)
  # Fine-tuning one is refused by the support table already, on any backend.
  with pytest.raises(errors.UnsupportedOperationError) as caught:
    hub.KerasLayer(_path("tf1_image_feature_vector"), trainable=True)
  assert "hub-adapter convert" in str(caught.value)
  case = next(c for c in shared_fixtures.cases(
      "tf1_image_feature_vector", "hub.load.signatures")
              if c.spec["signature"] == "default" and not c.spec["tags"])
  layer = hub.KerasLayer(converted_tf1, trainable=True)
  assert len(layer.trainable_weights) == 7
  assert len(layer.non_trainable_weights) == 2
  for jit in (False, True):
    x = case.inputs()["default"]
    out = _jit_call(layer, x)[0] if jit else layer(x)
    np.testing.assert_allclose(_np(out), case.outputs()["default"], **TOL)
  model = _head_model(layer, (8, 8, 3))
  start = {w.name: _np(w) for w in layer.weights}
  model.fit(images, np.zeros((16, 2), "float32"), epochs=2, batch_size=8,
            verbose=0)
  for weight in layer.weights:
    moved = not np.allclose(_np(weight), start[weight.name])
    # The default signature is the feature vector: the classifier's
    # logits/* are not on its path, on any backend.
    assert moved == (not weight.name.startswith("logits")), weight.name
  layer(images)
  assert len(layer.losses) == 2


def _table_model(path):
  """A numeric model with a lookup table: XLA cannot compile it."""
  tf = _tf()

  class TableModel(tf.Module):

    def __init__(self):
      super().__init__()
      self.table = tf.lookup.StaticHashTable(
          tf.lookup.KeyValueTensorInitializer(
              tf.constant([3, 5, 7], tf.int64),
              tf.constant([0, 1, 2], tf.int64)), default_value=3)
      self.embeddings = tf.Variable(
          np.arange(12, dtype="float32").reshape(4, 3) / 10, name="emb")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
    def __call__(self, ids):
      return tf.gather(self.embeddings, self.table.lookup(ids))

  tf.saved_model.save(TableModel(), path)
  return path


def test_a_model_xla_cannot_compile_runs_eagerly_and_refuses_jit(tmp_path):
  jax = _jax()
  path = _table_model(str(tmp_path / "table"))
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    layer = hub.KerasLayer(path, trainable=True, output_shape=[3])
  notes = [str(w.message) for w in caught if "without jit" in str(w.message)]
  assert len(notes) == 1 and "LookupTableFindV2" in notes[0]
  assert layer.supports_jit is False
  ids = np.array([3, 5, 9, 7])
  want = np.arange(12, dtype="float32").reshape(4, 3)[[0, 1, 3, 2]] / 10
  np.testing.assert_allclose(_np(layer(ids)), want, **TOL)
  # Eager jax.grad through the table lookup.
  grads = jax.grad(lambda v: layer.stateless_call([v], [], ids)[0].sum())(
      layer.weights[0].value)
  np.testing.assert_allclose(np.asarray(grads), np.ones((4, 3)), **TOL)
  with pytest.raises(errors.UnsupportedBackendError) as refused:
    _jit_call(layer, ids)
  assert refused.value.limit is backend_support.Limit.NOT_COMPILABLE
  keras = _keras()
  model = keras.Sequential([keras.Input((), dtype="int64"), layer,
                            keras.layers.Dense(1)])
  with pytest.warns(UserWarning, match="jit_compile=False"):
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse",
                  jit_compile=True)
  assert model.jit_compile is False
  history = model.fit(ids, np.ones((4, 1)), epochs=3, verbose=0)
  assert history.history["loss"][-1] < history.history["loss"][0]
  assert not np.allclose(_np(layer.weights[0]),
                         np.arange(12).reshape(4, 3) / 10)


def _cond_model(path):
  """A model that reads its variable inside tf.cond."""
  tf = _tf()

  class CondModel(tf.Module):

    def __init__(self):
      super().__init__()
      self.scale = tf.Variable(2.0, name="scale")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, x):
      return tf.cond(tf.reduce_sum(x) > 0, lambda: x * self.scale,
                     lambda: x)

  tf.saved_model.save(CondModel(), path)
  return path


def test_variables_used_inside_control_flow_are_refused(tmp_path):
  with pytest.raises(errors.UnsupportedBackendError) as caught:
    hub.KerasLayer(_cond_model(str(tmp_path / "cond")))
  assert caught.value.limit is backend_support.Limit.NOT_LIFTABLE
  assert "If" in str(caught.value)


def test_other_keras_backends_are_refused():
  """Keras' NumPy backend stands for the ones without a TF bridge."""
  code = ("import hub_adapter as hub\n"
          "from hub_adapter import errors\n"
          "try:\n"
          f"  hub.KerasLayer({_path(BN)!r})\n"
          "except errors.UnsupportedBackendError as e:\n"
          "  print('REFUSED', e.limit.value, e.backend)\n")
  env = dict(os.environ, KERAS_BACKEND="numpy")
  done = subprocess.run([sys.executable, "-c", code], env=env,
                        capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "REFUSED backend numpy" in done.stdout


# -- BERT: preprocessing in tf.data, the encoder fine-tuned in JAX -----------------
# Defined where the BERT pair is among the built test models (the tox
# models envs build it; older model folders lack it).


def _test_bert_encoder_fine_tunes_on_ids_from_a_tf_data_pipeline(
    shared_fixtures, jit):
  import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import
  tf, keras = _tf(), _keras()
  preprocess = hub.load(_path("tf2_bert_preprocess"))
  sentences = shared_fixtures.cases("tf2_bert_preprocess", "call")[0].inputs()[
      "inputs"]
  labels = np.random.RandomState(4).rand(len(sentences), 2).astype("float32")
  dataset = tf.data.Dataset.from_tensor_slices((sentences, labels)).batch(
      len(sentences)).map(lambda s, y: (preprocess(s), y)).repeat(4)
  encoder = hub.KerasLayer(_path("tf2_bert_encoder"), trainable=True)
  inputs = {k: keras.Input((16,), dtype="int32", name=k)
            for k in ("input_word_ids", "input_mask", "input_type_ids")}
  pooled = encoder(inputs)["pooled_output"]
  model = keras.Model(inputs, keras.layers.Dense(2)(pooled))
  model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse",
                jit_compile=jit)
  start = [_np(w) for w in encoder.trainable_weights]
  history = model.fit(dataset, epochs=1, verbose=0)
  assert np.isfinite(history.history["loss"][-1])
  moved = [not np.allclose(_np(w), s)
           for w, s in zip(encoder.trainable_weights, start)]
  assert all(moved)
  first_batch = next(iter(dataset))[0]
  case = shared_fixtures.cases("tf2_bert_encoder", "call")[0]
  for key, want in case.inputs().items():
    np.testing.assert_array_equal(first_batch[key].numpy(), want)


if _has("tf2_bert_preprocess") and _has("tf2_bert_encoder"):
  test_bert_encoder_fine_tunes_on_ids_from_a_tf_data_pipeline = (
      pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])(
          _test_bert_encoder_fine_tunes_on_ids_from_a_tf_data_pipeline))


# -- the rewrite itself --------------------------------------------------------------

def test_lift_follows_reads_writes_gathers_and_random_ops():
  """Reads see the writes ordered before them; the last write is the new
  state; a stateful random op draws from the seed input."""
  tf = _tf()
  from hub_adapter.keras_layers import lifting  # pylint: disable=g-import-not-at-top

  class Stateful(tf.Module):

    def __init__(self):
      super().__init__()
      self.count = tf.Variable(1.0)
      self.table = tf.Variable([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])

    @tf.function(autograph=False)
    def __call__(self, x, ids):
      before = self.count.read_value()
      self.count.assign_add(x)
      middle = self.count.read_value()
      self.count.assign_sub(1.0)
      rows = tf.gather(self.table, ids)
      self.table.assign(self.table * 2.0)
      noise = tf.random.uniform([3])
      return {"before": before, "middle": middle, "rows": rows,
              "after": self.count.read_value(), "noise": noise}

  model = Stateful()
  function = model.__call__.get_concrete_function(
      tf.TensorSpec([], tf.float32), tf.TensorSpec([None], tf.int32))
  variables = [model.count, model.table]
  lifted = lifting.lift(function, variables)
  assert lifted.has_seed and not lifted.jit_blockers
  assert sorted(lifted.state_indices) == [0, 1]
  apply = tf.function(lambda values, seed, inputs: lifted.apply(
      values, seed, inputs), autograph=False)
  values = [tf.constant(1.0), tf.constant(model.table.numpy())]
  outputs, states = apply(values, tf.constant([1, 2]), [tf.constant(5.0),
                                                       tf.constant([2, 0])])
  assert float(outputs["before"]) == 1.0
  assert float(outputs["middle"]) == 6.0
  assert float(outputs["after"]) == 5.0
  np.testing.assert_array_equal(outputs["rows"], [[5.0, 6.0], [1.0, 2.0]])
  new = dict(zip(lifted.state_indices, states))
  assert float(new[0]) == 5.0
  np.testing.assert_array_equal(new[1], model.table.numpy() * 2)
  again, _ = apply(values, tf.constant([1, 2]), [tf.constant(5.0),
                                                tf.constant([2, 0])])
  np.testing.assert_array_equal(again["noise"], outputs["noise"])
  other, _ = apply(values, tf.constant([1, 3]), [tf.constant(5.0),
                                                tf.constant([2, 0])])
  assert not np.allclose(other["noise"], outputs["noise"])
  assert float(model.count.numpy()) == 1.0  # The variables are untouched.
