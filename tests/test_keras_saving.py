"""Saving Keras models that hold a hub_adapter.KerasLayer, in every flavour.

The matrix tested here:

- Keras 3: ``.keras`` (``model.save``/``keras.models.load_model``, default
  safe mode), ``model.export()`` (reloaded by ``tf.saved_model.load``,
  ``hub_adapter.load`` and ``hub_adapter.KerasLayer``), legacy ``.h5``
  (reloaded with ``compile=False``). Not covered: ``model.export()`` of a
  TF1 Hub module with lookup tables (TF re-saves a TF1 module loaded in TF2
  without its table initialization, so the export cannot be served);
- Keras 2 (tf_keras on TF 2.21, tf.keras on TF 2.15): ``.keras``, ``.h5``
  and the SavedModel format.

Each model is fine-tuned a little before saving, so that the reloaded layer
must get its weights from the saved file, not from the hub model's folder.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fixtures
import hub_adapter as hub
from hub_adapter import runtime

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


@pytest.fixture(scope="module")
def keras():
  return runtime.keras_module()


def _path(name):
  return fixtures.locate().path(name)


@pytest.fixture(scope="module")
def images():
  return np.random.RandomState(0).rand(8, 8, 8, 3).astype("float32")


@pytest.fixture(scope="module")
def sentences():
  return _tf().constant(["hello world", "the quick brown fox", ""])


@pytest.fixture(scope="module")
def fine_tuned(keras, images):
  """A functional model around a trainable image layer, trained a little.

  The head is not named "head": the hub model has variables "head/kernel"
  and "head/bias", and tf_keras' H5 writer names optimizer slots by variable
  name, so two "head/kernel" slots would collide.
  """
  layer = hub.KerasLayer(_path("tf2_image_bn_reusable"), trainable=True,
                         name="hub")
  inputs = keras.Input((8, 8, 3))
  model = keras.Model(inputs, keras.layers.Dense(2, name="classifier")(
      layer(inputs)))
  model.compile(optimizer=keras.optimizers.SGD(0.1),
                loss=keras.losses.MeanSquaredError())
  targets = np.random.RandomState(1).rand(8, 2).astype("float32")
  model.fit(images, targets, epochs=2, batch_size=4, verbose=0)
  return model


@pytest.fixture(scope="module")
def text_model(keras):
  tf = _tf()
  inputs = keras.Input(shape=(), dtype=tf.string)
  return keras.Model(
      inputs, hub.KerasLayer(_path("tf2_text_vocab_asset"), name="hub")(
          inputs))


@pytest.fixture(scope="module")
def tf1_text_model(keras):
  """A frozen TF1 Hub module (partitioned embedding, vocabulary table)."""
  tf = _tf()
  inputs = keras.Input(shape=(), dtype=tf.string)
  return keras.Model(
      inputs, hub.KerasLayer(_path("tf1_text_embedding"), name="hub")(inputs))


@pytest.fixture(scope="module")
def dict_model(keras):
  inputs = {"features": keras.Input((4,), name="features"),
            "context": keras.Input((2,), name="context")}
  layer = hub.KerasLayer(_path("tf2_signatures_only"), output_key="logits",
                         name="hub")
  return keras.Model(inputs, layer(inputs))


def _dict_inputs():
  case = fixtures.locate().cases("tf2_signatures_only", "signature")[0]
  return case.inputs()


def _hub_layer(model):
  layers = [l for l in model.layers if isinstance(l, hub.KerasLayer)]
  assert len(layers) == 1, model.layers
  return layers[0]


def _assert_weights_restored(original, reloaded):
  """The reloaded layer holds the fine-tuned values, not the folder's."""
  pristine = hub.KerasLayer(_path("tf2_image_bn_reusable"))
  for want, got, base in zip(_hub_layer(original).weights,
                             _hub_layer(reloaded).weights, pristine.weights):
    np.testing.assert_allclose(np.array(got.numpy()), np.array(want.numpy()),
                               **TOL)
    assert not np.allclose(np.array(got.numpy()), np.array(base.numpy()))


def test_layer_serializes_under_its_registered_name(keras):
  layer = hub.KerasLayer(_path("tf2_signatures_only"), signature="embed",
                         output_key="embedding", output_shape=[5])
  serialized = keras.layers.serialize(layer)
  assert "hub_adapter>KerasLayer" in str(serialized)
  again = keras.layers.deserialize(serialized)
  assert isinstance(again, hub.KerasLayer)
  assert again.get_config() == layer.get_config()
  np.testing.assert_allclose(again(_dict_inputs()), layer(_dict_inputs()),
                             **TOL)


# -- Keras 3 ------------------------------------------------------------------

@pytest.mark.requires("keras3")
def test_keras3_dot_keras_round_trip(keras, fine_tuned, images, text_model,
                                     sentences, dict_model, tf1_text_model,
                                     tmp_path):
  for name, model, x in (("image", fine_tuned, images),
                         ("text", text_model, sentences),
                         ("dict", dict_model, _dict_inputs()),
                         ("tf1_text", tf1_text_model, sentences)):
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)  # default safe_mode=True
    assert isinstance(_hub_layer(reloaded), hub.KerasLayer)
    np.testing.assert_allclose(reloaded(x), model(x), err_msg=name, **TOL)
  _assert_weights_restored(fine_tuned, keras.models.load_model(
      str(tmp_path / "image.keras")))


@pytest.mark.requires("keras3")
def test_keras3_export_reloads_everywhere(keras, fine_tuned, images,
                                          text_model, sentences, tmp_path):
  tf = _tf()
  inputs = keras.Input((8, 8, 3))
  tf1_image = keras.Model(inputs, hub.KerasLayer(
      _path("tf1_image_feature_vector"))(inputs))
  for name, model, x in (("image", fine_tuned, images),
                         ("text", text_model, sentences),
                         ("tf1_image", tf1_image, images)):
    want = np.array(model(x))
    folder = str(tmp_path / name)
    model.export(folder, verbose=False)
    restored = tf.saved_model.load(folder)
    np.testing.assert_allclose(restored.serve(x), want, err_msg=name, **TOL)
    np.testing.assert_allclose(hub.load(folder)(x), want, err_msg=name,
                               **TOL)
    rewrapped = hub.KerasLayer(folder)
    assert rewrapped.model.signature == "serving_default"
    np.testing.assert_allclose(rewrapped(x), want, err_msg=name, **TOL)


@pytest.mark.requires("keras3")
def test_keras3_legacy_h5_without_compile(keras, fine_tuned, images,
                                          tmp_path):
  path = str(tmp_path / "model.h5")
  fine_tuned.save(path)
  reloaded = keras.models.load_model(path, compile=False)
  np.testing.assert_allclose(reloaded(images), fine_tuned(images), **TOL)
  _assert_weights_restored(fine_tuned, reloaded)


# -- Keras 2 (tf_keras / TF 2.15 tf.keras) ------------------------------------

@pytest.mark.requires("tf_keras")
@pytest.mark.parametrize("suffix", [".keras", ".h5", ""])
def test_keras2_formats_round_trip(keras, fine_tuned, images, text_model,
                                   sentences, dict_model, tf1_text_model,
                                   tmp_path, suffix):
  for name, model, x in (("image", fine_tuned, images),
                         ("text", text_model, sentences),
                         ("dict", dict_model, _dict_inputs()),
                         ("tf1_text", tf1_text_model, sentences)):
    path = str(tmp_path / f"{name}{suffix}")
    model.save(path)  # no suffix: the SavedModel format
    reloaded = keras.models.load_model(path)
    assert isinstance(_hub_layer(reloaded), hub.KerasLayer)
    np.testing.assert_allclose(reloaded(x), model(x), err_msg=name, **TOL)
    if name == "image":
      _assert_weights_restored(model, reloaded)


@pytest.mark.requires("tf_keras")
def test_models_saved_with_tensorflow_hub_load_with_custom_objects(
    keras, images, tmp_path):
  from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
  tensorflow_hub = import_tensorflow_hub()
  inputs = keras.Input((8, 8, 3))
  model = keras.Model(inputs, tensorflow_hub.KerasLayer(
      _path("tf2_image_bn_reusable"))(inputs))
  path = str(tmp_path / "tensorflow_hub.h5")
  model.save(path)
  reloaded = keras.models.load_model(
      path, custom_objects={"KerasLayer": hub.KerasLayer})
  assert isinstance(_hub_layer(reloaded), hub.KerasLayer)
  np.testing.assert_allclose(reloaded(images), model(images), **TOL)


# -- safe mode and fresh processes --------------------------------------------

@pytest.fixture(scope="module")
def file_reading_model(tmp_path_factory):
  """A tiny SavedModel whose __call__ reads a file (flagged as unsafe)."""
  tf = _tf()
  folder = tmp_path_factory.mktemp("unsafe")
  offset = folder / "offset.txt"
  offset.write_text("3")

  class Reader(tf.Module):

    def __init__(self):
      super().__init__()
      self.w = tf.Variable([[1.0], [2.0]])

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def __call__(self, x):
      added = tf.strings.to_number(tf.io.read_file(str(offset)))
      return tf.matmul(x, self.w) + added

  path = str(folder / "model")
  tf.saved_model.save(Reader(), path)
  return path


def test_safe_mode_refuses_a_model_that_reads_files(keras, file_reading_model,
                                                    tmp_path):
  layer = hub.KerasLayer(file_reading_model)
  inputs = keras.Input((2,))
  model = keras.Model(inputs, layer(inputs))
  x = np.ones((1, 2), "float32")
  np.testing.assert_allclose(model(x), [[6.0]])
  path = str(tmp_path / "reader.keras")
  model.save(path)
  with pytest.raises(hub.UnsafeModelError, match="safe_mode=False") as info:
    keras.models.load_model(path)
  assert "ReadFile" in str(info.value)
  reloaded = keras.models.load_model(path, safe_mode=False)
  np.testing.assert_allclose(reloaded(x), [[6.0]])


def test_a_fresh_process_reloads_after_accessing_hub_adapter_keraslayer(
    fine_tuned, images, tmp_path):
  suffix = ".keras" if runtime.keras_flavour() == runtime.KERAS3 else ".h5"
  path = str(tmp_path / f"model{suffix}")
  fine_tuned.save(path)
  np.save(str(tmp_path / "x.npy"), images)
  code = textwrap.dedent(f"""
      import numpy as np
      import hub_adapter
      from hub_adapter import runtime
      hub_adapter.KerasLayer  # registers the class for deserialization
      keras = runtime.keras_module()
      model = keras.models.load_model({path!r}, compile=False)
      np.save({str(tmp_path / "y.npy")!r},
              np.array(model(np.load({str(tmp_path / "x.npy")!r}))))
      """)
  subprocess.run([sys.executable, "-c", code], check=True, timeout=240,
                 env=dict(os.environ), capture_output=True)
  np.testing.assert_allclose(np.load(str(tmp_path / "y.npy")),
                             fine_tuned(images), **TOL)
