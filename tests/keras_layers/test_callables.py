"""KerasLayer(obj): a loaded, callable object as the handle (as tensorflow_hub).

Tiny models are made here: a TF2 SavedModel ``y = x * w + 1`` with a
``serving_default`` signature, and a TF1 Hub module ``y = x + w``.
"""
from __future__ import annotations

import numpy as np
import pytest

import hub_adapter as hub
from hub_adapter import runtime


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


class _Dense:
  """Builds the tiny tf.Module (a class so that each test gets a new one)."""

  @staticmethod
  def make():
    tf = _tf()

    class Dense(tf.Module):

      def __init__(self):
        super().__init__()
        self.w = tf.Variable([[2.0]], name="w")

      @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32)])
      def __call__(self, x):
        return tf.matmul(x, self.w) + 1.0

    return Dense()


@pytest.fixture(scope="module")
def tf2_path(tmp_path_factory):
  tf = _tf()
  obj = _Dense.make()
  path = str(tmp_path_factory.mktemp("callables") / "tf2")
  tf.saved_model.save(obj, path)
  return path


@pytest.fixture(scope="module")
def tf1_path(tmp_path_factory):
  tf = _tf()

  def module_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None, 1], name="x")
    w = tf.compat.v1.get_variable("w", initializer=[[5.0]])
    hub.add_signature(inputs=x, outputs=x + w)

  spec = hub.create_module_spec(module_fn)
  path = str(tmp_path_factory.mktemp("callables") / "tf1")
  with tf.compat.v1.Graph().as_default():
    module = hub.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      module.export(path, session)
  return path


X = np.array([[1.0], [3.0]], np.float32)


@pytest.mark.parametrize("source", ["hub_adapter.load", "tf.saved_model.load",
                                    "tf.Module"])
def test_a_loaded_object_is_a_handle(tf2_path, source):
  tf = _tf()
  obj = {"hub_adapter.load": lambda: hub.load(tf2_path),
         "tf.saved_model.load": lambda: tf.saved_model.load(tf2_path),
         "tf.Module": _Dense.make}[source]()
  layer = hub.KerasLayer(obj)
  np.testing.assert_allclose(layer(X), [[3.0], [7.0]])
  assert layer.handle is obj
  assert [w.shape for w in layer.trainable_weights] == []  # Frozen.
  assert len(layer.weights) == 1


def test_a_callable_handle_fine_tunes_in_fit(tf2_path):
  tf = _tf()
  keras = runtime.keras_module()
  obj = tf.saved_model.load(tf2_path)
  layer = hub.KerasLayer(obj, trainable=True)
  assert len(layer.trainable_weights) == 1
  model = keras.Sequential([keras.Input((1,)), layer])
  model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
  model.fit(X, np.zeros_like(X), epochs=2, verbose=0)
  w = float(np.asarray(obj.w.numpy()).ravel()[0])
  assert w < 2.0  # The object's own variable was trained.
  np.testing.assert_allclose(layer(X), X * w + 1.0, rtol=1e-5)


def test_signatures_of_a_callable_handle(tf2_path):
  tf = _tf()
  obj = tf.saved_model.load(tf2_path)
  layer = hub.KerasLayer(obj, signature="serving_default",
                         output_key="output_0")
  np.testing.assert_allclose(layer(X), [[3.0], [7.0]])
  with pytest.raises(ValueError, match="^Unknown signature nope"):
    hub.KerasLayer(obj, signature="nope", output_key="output_0")


def test_a_tf1_module_object_uses_its_default_signature(tf1_path):
  for obj in (hub.load(tf1_path), _tf().saved_model.load(tf1_path)):
    if not hasattr(obj, "_is_hub_module_v1"):
      obj._is_hub_module_v1 = True  # As hub.load marks it.  # pylint: disable=protected-access
    layer = hub.KerasLayer(obj)
    np.testing.assert_allclose(layer(X), [[6.0], [8.0]])
    with pytest.raises(ValueError, match="^Setting hub.KerasLayer.trainable"):
      hub.KerasLayer(obj, trainable=True)


@pytest.mark.parametrize("name", ["tags", "load_options"])
def test_tags_and_load_options_do_not_go_with_an_object(tf2_path, name):
  tf = _tf()
  value = ["serve"] if name == "tags" else tf.saved_model.LoadOptions()
  with pytest.raises(ValueError) as info:
    hub.KerasLayer(tf.saved_model.load(tf2_path), **{name: value})
  assert isinstance(info.value, hub.InputError)
  assert str(info.value).startswith(
      f"Passing a callable handle is mutually exclusive with setting {name}.")


def test_a_layer_of_an_object_has_no_config(tf2_path):
  layer = hub.KerasLayer(_tf().saved_model.load(tf2_path))
  with pytest.raises(NotImplementedError,
                     match="^Can only generate a valid config"):
    layer.get_config()


def test_an_object_that_is_neither_callable_nor_has_signatures():
  with pytest.raises(ValueError, match="^Expected a string, got"):
    hub.KerasLayer(object())
