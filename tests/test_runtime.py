"""Mode, Keras flavour, version and Estimator detection with real TF."""
import os

import pytest
import tensorflow as tf

from hub_adapter import runtime
from hub_adapter.support import Mode


def test_eager_is_tf2():
  assert runtime.current_mode() is Mode.TF2


def test_tf_function_tracing_is_still_tf2():
  seen = []

  @tf.function
  def traced(x):
    seen.append(runtime.current_mode())
    return x + 1

  traced(tf.constant(1))
  assert seen == [Mode.TF2]


def test_graph_as_default_is_tf1_compat():
  with tf.Graph().as_default():
    assert runtime.current_mode() is Mode.TF1_COMPAT
  assert runtime.current_mode() is Mode.TF2


def test_wrap_function_inside_graph_is_tf1_compat():
  seen = []

  def body():
    seen.append(runtime.current_mode())
    return tf.constant(1)

  with tf.Graph().as_default():
    tf.compat.v1.wrap_function(body, [])
  assert seen == [Mode.TF1_COMPAT]


@pytest.mark.tf1_compat
def test_disable_v2_behavior_is_tf1_compat():
  assert runtime.current_mode() is Mode.TF1_COMPAT
  assert runtime.keras_flavour() == runtime.TF_KERAS
  assert runtime.keras_module().__name__.split(".")[0] in ("tf_keras", "keras")
  layer = runtime.keras_module().layers.Dense(1)
  assert isinstance(layer, runtime.keras_module().layers.Layer)


def test_version_matches_tensorflow():
  major, minor = (int(p) for p in tf.__version__.split(".")[:2])
  assert runtime.tf_version() == (major, minor)


@pytest.mark.requires("keras3")
def test_keras3_flavour():
  import keras
  assert runtime.keras_flavour() == runtime.KERAS3
  assert runtime.keras_module() is keras
  assert keras.__version__.startswith("3.")


@pytest.mark.requires("tf221", "tf_keras")
def test_legacy_keras_flavour():
  import tf_keras
  assert os.environ["TF_USE_LEGACY_KERAS"] == "1"
  assert runtime.keras_flavour() == runtime.TF_KERAS
  assert runtime.keras_module() is tf_keras


@pytest.mark.requires("tf215")
def test_tf215_has_keras2_and_estimator():
  assert runtime.keras_flavour() == runtime.TF_KERAS
  import keras  # TF 2.15's tf.keras is the keras 2.15 package
  assert runtime.keras_module() is tf.keras
  assert keras.__version__.startswith("2.15")
  assert runtime.has_estimator()
  assert hasattr(tf, "estimator")


@pytest.mark.requires("tf221")
def test_tf221_has_no_estimator():
  assert not runtime.has_estimator()
  assert not hasattr(tf, "estimator")


def test_describe_names_the_stack():
  summary = runtime.describe()
  assert summary["tensorflow"] == tf.__version__
  assert summary["mode"] == "tf2"
