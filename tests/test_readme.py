"""README.md's code runs as written, on models with and without regularizers.

Each Python block of the README that works on a ``handle`` is taken from the
file verbatim and run in a fresh process, after a prelude that defines the
names it leaves to the reader (``handle``, ``inputs``, ``x``, ``images``,
``my_loss``, ``keras``). The models are tiny ones made here: a TF2
SavedModel and a TF1 Hub module (with ``{"train"}`` and default graph
variants), each once with a regularization loss and once without (where
``tf.add_n([])`` used to fail).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hub_adapter as hub

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _block(marker: str) -> str:
  """The README's Python block that contains ``marker``."""
  with open(README) as f:
    blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
  found = [b for b in blocks if marker in b]
  assert len(found) == 1, (marker, len(found))
  return found[0]


def _save_tf2(path: str, regularized: bool) -> str:
  """Images [batch, h, w, 3] -> mean colour @ w: 2 features; reusable."""
  tf = _tf()

  class Features(tf.Module):

    def __init__(self):
      super().__init__()
      self.w = tf.Variable([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
      self.regularization_losses = (
          [tf.function(lambda: 0.01 * tf.reduce_sum(tf.square(self.w)),
                       input_signature=[])] if regularized else [])

    @tf.function(input_signature=[
        tf.TensorSpec([None, None, None, 3], tf.float32),
        tf.TensorSpec([], tf.bool)])
    def __call__(self, images, training=False):
      del training
      return tf.matmul(tf.reduce_mean(images, axis=[1, 2]), self.w)

  obj = Features()
  serving = tf.function(lambda images: {"features": obj(images, False)},
                        input_signature=[tf.TensorSpec([None, None, None, 3],
                                                       tf.float32)])
  tf.saved_model.save(obj, path, signatures={"serving_default": serving})
  return path


def _save_tf1(path: str, regularized: bool) -> str:
  """The same features as a TF1 Hub module, signatures 'default' and
  'image_feature_vector', graph variants {'train'} and {}."""
  tf = _tf()

  def module_fn():
    images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3])
    w = tf.compat.v1.get_variable(
        "w", initializer=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    if regularized:
      tf.compat.v1.add_to_collection(
          tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES,
          0.01 * tf.reduce_sum(tf.square(w)))
    features = tf.matmul(tf.reduce_mean(images, axis=[1, 2]), w)
    hub.add_signature(inputs=images, outputs=features)
    hub.add_signature("image_feature_vector", inputs={"images": images},
                      outputs={"default": features})

  spec = hub.create_module_spec(
      module_fn, tags_and_args=[({"train"}, {}), (set(), {})])
  with tf.compat.v1.Graph().as_default():
    module = hub.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      module.export(path, session)
  return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
  root = tmp_path_factory.mktemp("readme")
  made = {}
  for regularized in (False, True):
    suffix = "_reg" if regularized else ""
    made["tf2" + suffix] = _save_tf2(str(root / ("tf2" + suffix)),
                                     regularized)
    made["tf1" + suffix] = _save_tf1(str(root / ("tf1" + suffix)),
                                     regularized)
  return made


PRELUDE = """
import numpy as np
import tensorflow as tf
import hub_adapter as hub
handle = {handle!r}
images = np.random.RandomState(0).rand(2, 8, 8, 3).astype("float32")
x = inputs = images
def my_loss(y):
  return tf.reduce_mean(tf.square(y))
"""


def _run(handle: str, code: str, check: str = "") -> str:
  script = PRELUDE.format(handle=handle) + code + textwrap.dedent(check)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                        text=True, env=env, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""


@pytest.mark.parametrize("name", ["tf1", "tf1_reg", "tf2", "tf2_reg"])
def test_tf1_compat_fine_tuning_block(models, name):
  code = _block("tf.compat.v1.disable_v2_behavior()\nmodel = hub.load")
  # After the block: the loss it built is my_loss(y) plus the model's
  # regularization loss (0 without one), in a fresh session.
  out = _run(models[name], code, """
      with tf.compat.v1.Session() as check:
        check.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
        print(float(check.run(loss - my_loss(y))))
      """)
  expected = 0.01 * (1 + 1 + 1 + 1) if name.endswith("_reg") else 0.0
  np.testing.assert_allclose(float(out), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["tf2", "tf2_reg"])
def test_load_and_infer_block(models, name):
  code = _block("model.signatures[\"serving_default\"]")
  out = _run(models[name], code, """
      print(np.asarray(outputs).round(4).tolist())
      """)
  np.testing.assert_allclose(
      np.array(eval(out)),  # pylint: disable=eval-used
      np.random.RandomState(0).rand(2, 8, 8, 3).astype("float32").mean(
          axis=(1, 2)) @ np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
      atol=1e-4)


@pytest.mark.parametrize("name", ["tf1", "tf1_reg"])
def test_tf1_hub_api_block(models, name):
  code = _block("import hub_adapter as hub                   # was:")
  out = _run(models[name], "import tensorflow as tf\n" + code, """
      print(sorted(features), sorted(sorted(t) for t in spec.get_tags()),
            len(tf.compat.v1.losses.get_regularization_losses()))
      """)
  assert out == (f"['default'] [[], ['train']] "
                 f"{1 if name.endswith('_reg') else 0}")


@pytest.mark.parametrize("name", ["tf2", "tf2_reg"])
def test_keras_block(models, name):
  code = _block("keras.Sequential([keras.Input((224, 224, 3))")
  out = _run(models[name], """
from hub_adapter import runtime
keras = runtime.keras_module()
""" + code, """
      batch = np.random.RandomState(1).rand(2, 224, 224, 3).astype("float32")
      print(tuple(model(batch).shape), len(layer.trainable_weights),
            len(model.losses), sep="|")
      """)
  assert out == f"(2, 5)|1|{1 if name.endswith('_reg') else 0}"
