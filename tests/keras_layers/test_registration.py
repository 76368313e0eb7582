"""Saved Keras models with a KerasLayer reload after only ``import hub_adapter``.

Each test saves a Keras model holding a ``hub_adapter.KerasLayer`` of a tiny
TF2 SavedModel made here, then reloads it in a new Python process that has
done nothing but ``import hub_adapter`` (Keras finds the layer's class by its
registered name only), in the Keras flavour this stack runs.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hub_adapter as hub
from hub_adapter import runtime
from hub_adapter.keras_layers import registration


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _save_times_three(path: str) -> str:
  tf = _tf()

  class TimesThree(tf.Module):

    def __init__(self):
      super().__init__()
      self.w = tf.Variable([[3.0]])

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32)])
    def __call__(self, x):
      return tf.matmul(x, self.w)

  tf.saved_model.save(TimesThree(), path)
  return path


def _run(code: str) -> str:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                        capture_output=True, text=True, env=env, timeout=600,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """A Keras model around the layer, trained a little, saved as .keras
  (and .h5); returns the files and the trained model's prediction."""
  root = tmp_path_factory.mktemp("keras_registration")
  handle = _save_times_three(str(root / "times_three"))
  keras = runtime.keras_module()
  model = keras.Sequential([keras.Input((1,)),
                            hub.KerasLayer(handle, trainable=True)])
  model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
  x = np.array([[1.0], [2.0]], np.float32)
  model.fit(x, np.array([[2.0], [4.0]], np.float32), epochs=1, verbose=0)
  files = {"keras": str(root / "model.keras"), "h5": str(root / "model.h5")}
  model.save(files["keras"])
  model.save(files["h5"])
  return files, model.predict(x, verbose=0)


@pytest.mark.parametrize("kind", ["keras", "h5"])
def test_saved_model_reloads_in_a_new_process_after_import_hub_adapter(
    saved, kind):
  files, expected = saved
  out = _run(f"""
      import sys
      import hub_adapter
      import numpy as np
      before = sorted(m for m in ("tensorflow", "keras", "tf_keras")
                      if m in sys.modules)
      from hub_adapter import runtime
      keras = runtime.keras_module()
      model = keras.models.load_model({files[kind]!r}, compile=False)
      layer = model.layers[-1]
      print(before, isinstance(layer, hub_adapter.KerasLayer),
            model.predict(np.array([[1.0], [2.0]], np.float32),
                          verbose=0).ravel().tolist())
      """)
  before, is_layer, values = out.split(" ", 2)
  assert before == "[]"  # import hub_adapter imported neither.
  assert is_layer == "True"
  np.testing.assert_allclose(eval(values), expected.ravel(), rtol=1e-6)  # pylint: disable=eval-used
  assert not np.allclose(expected.ravel(), [3.0, 6.0])  # Trained weights.


def test_keras_imported_before_hub_adapter_also_finds_the_layer(saved):
  files, expected = saved
  out = _run(f"""
      import numpy as np
      from hub_adapter import runtime
      keras = runtime.keras_module()   # Keras first ...
      import hub_adapter                # ... then hub_adapter.
      model = keras.models.load_model({files["keras"]!r})
      print(model.predict(np.array([[1.0]], np.float32),
                          verbose=0).ravel().tolist())
      """)
  np.testing.assert_allclose(eval(out), expected.ravel()[:1], rtol=1e-6)  # pylint: disable=eval-used


def test_the_reference_gives_way_to_the_real_class():
  keras = runtime.keras_module()
  objects = registration.custom_objects(keras)
  registered = objects[registration.REGISTERED_NAME]
  # A layer was made in this process (or the class was built on import of
  # hub_adapter.keras_layer): the real class holds the name, so saving
  # writes it, and tf_keras did not refuse to register it.
  assert issubclass(registered, hub.KerasLayer)
  assert issubclass(registered, keras.layers.Layer)
  assert keras.saving.get_registered_name(registered) == (
      registration.REGISTERED_NAME)


def test_the_watcher_only_wraps_the_keras_packages():
  out = _run("""
      import importlib.util, sys
      import hub_adapter
      json_spec = importlib.util.find_spec("json")
      print(type(json_spec.loader).__name__)
      """)
  assert out != "_EnteringLoader"
