"""hub_adapter.load's result saves like hub.load's: trackable, in TF2.

Tiny models are made here: a TF2 SavedModel with a ``__call__`` and two
signatures, and TF1 Hub modules (one with a vocabulary lookup table) created
the way tensorflow_hub 0.15 did from an eager program.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import hub_adapter
from hub_adapter import errors


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _save_tf2_model(path: str) -> str:
  """y = x @ w + 1 as __call__, and signatures 'plus' and 'times'."""
  tf = _tf()

  class Tiny(tf.Module):

    def __init__(self):
      super().__init__()
      self.w = tf.Variable([[2.0], [3.0]])

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def __call__(self, x):
      return tf.matmul(x, self.w) + 1.0

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def times(self, x):
      return {"y": tf.matmul(x, self.w)}

  obj = Tiny()
  tf.saved_model.save(obj, path, signatures={
      "plus": obj.__call__.get_concrete_function(), "times": obj.times})
  return path


def _save_tf1_text_module(path: str, vocab: str) -> str:
  """A TF1 Hub module: word ids from a vocabulary table, times a variable."""
  tf = _tf()

  def module_fn():
    words = tf.compat.v1.placeholder(tf.string, [None], name="words")
    table = tf.compat.v1.lookup.StaticHashTable(
        tf.compat.v1.lookup.TextFileInitializer(
            vocab, tf.string, tf.compat.v1.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf.compat.v1.lookup.TextFileIndex.LINE_NUMBER),
        default_value=-1)
    scale = tf.compat.v1.get_variable("scale", initializer=10.0)
    ids = tf.cast(table.lookup(words), tf.float32)
    hub_adapter.add_signature(inputs={"words": words},
                              outputs={"default": ids * scale})

  spec = hub_adapter.create_module_spec(module_fn)
  with tf.compat.v1.Graph().as_default():
    module = hub_adapter.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
      module.export(path, session)
  return path


X = np.array([[1.0, 1.0], [2.0, 0.0]], np.float32)
WORDS = np.array([b"b", b"zzz", b"c"])


@pytest.fixture(scope="module")
def tf1_module(tmp_path_factory):
  root = tmp_path_factory.mktemp("trackable_tf1")
  vocab = root / "vocab.txt"
  vocab.write_text("a\nb\nc\n")
  return _save_tf1_text_module(str(root / "tf1"), str(vocab))


@pytest.fixture(scope="module")
def models(tmp_path_factory, tf1_module):
  root = tmp_path_factory.mktemp("trackable_tf2")
  return {"tf2": _save_tf2_model(str(root / "tf2")), "tf1": tf1_module}


def test_loaded_model_is_trackable(models):
  tf = _tf()
  model = hub_adapter.load(models["tf2"])
  assert isinstance(model, tf.__internal__.tracking.Trackable)
  assert model._is_hub_module_v1 is False  # Falls through to the object.  # pylint: disable=protected-access


def test_tf_saved_model_save_of_a_loaded_model(models, tmp_path):
  tf = _tf()
  model = hub_adapter.load(models["tf2"])
  tf.saved_model.save(model, str(tmp_path / "copy"))
  copy = tf.saved_model.load(str(tmp_path / "copy"))
  np.testing.assert_allclose(copy(tf.constant(X)), [[6.0], [5.0]])


@pytest.mark.parametrize("kind", ["tf2", "tf1"])
def test_a_tf_module_holding_a_loaded_model_saves_with_its_signatures(
    models, tmp_path, kind):
  # Its function captures the model's variables (and, for the TF1 module,
  # lookup table and asset): all must be reachable through the holder.
  tf = _tf()
  model = hub_adapter.load(models[kind])
  spec = (tf.TensorSpec([None, 2], tf.float32) if kind == "tf2"
          else tf.TensorSpec([None], tf.string))

  class Holder(tf.Module):

    def __init__(self, inner):
      super().__init__()
      self.inner = inner

    @tf.function(input_signature=[spec])
    def serve(self, x):
      return {"out": self.inner(x) * 2.0}

  holder = Holder(model)
  path = str(tmp_path / "holder")
  tf.saved_model.save(holder, path, signatures={"serve": holder.serve})
  inputs = X if kind == "tf2" else WORDS
  expected = ([[12.0], [10.0]] if kind == "tf2" else [20.0, -20.0, 40.0])
  reloaded = tf.saved_model.load(path)
  np.testing.assert_allclose(
      reloaded.signatures["serve"](tf.constant(inputs))["out"], expected)
  # And through hub_adapter, in a new load.
  again = hub_adapter.load(path, signature="serve", output_key="out")
  np.testing.assert_allclose(again(tf.constant(inputs)), expected)


def test_hub_adapter_save_keeps_every_signature(models, tmp_path):
  tf = _tf()
  model = hub_adapter.load(models["tf2"])
  model.variables[0].assign([[1.0], [1.0]])  # The copy has current values.
  hub_adapter.save(model, str(tmp_path / "copy"))
  copy = tf.saved_model.load(str(tmp_path / "copy"))
  assert sorted(copy.signatures) == ["plus", "times"]
  np.testing.assert_allclose(
      copy.signatures["times"](x=tf.constant(X))["y"], [[2.0], [2.0]])
  np.testing.assert_allclose(copy(tf.constant(X)), [[3.0], [3.0]])


def test_hub_adapter_save_of_a_tf1_module_loaded_in_tf2(models, tmp_path):
  tf = _tf()
  model = hub_adapter.load(models["tf1"])
  path = str(tmp_path / "copy")
  hub_adapter.save(model, path)
  assert not os.path.exists(os.path.join(path, "tfhub_module.pb"))
  copy = hub_adapter.load(path)  # A TF2 SavedModel now: its 'default'.
  assert copy.format is hub_adapter.Format.TF2_SAVED_MODEL
  np.testing.assert_allclose(copy(tf.constant(WORDS)), [10.0, -10.0, 20.0])


def test_checkpoint_of_a_loaded_model_restores_into_a_new_load(models,
                                                               tmp_path):
  tf = _tf()
  model = hub_adapter.load(models["tf2"], trainable=True)
  model.variables[0].assign([[0.5], [0.5]])
  prefix = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
  fresh = hub_adapter.load(models["tf2"])
  np.testing.assert_allclose(fresh(tf.constant(X)), [[6.0], [5.0]])
  tf.train.Checkpoint(model=fresh).restore(prefix).assert_consumed()
  np.testing.assert_allclose(fresh(tf.constant(X)), [[2.0], [2.0]])


@pytest.mark.tf1_compat
def test_a_tf1_module_instantiated_in_a_graph_is_refused_with_a_remedy(
    tf1_module, tmp_path):
  model = hub_adapter.load(tf1_module)
  with pytest.raises(errors.InputError) as info:
    hub_adapter.save(model, str(tmp_path / "copy"))
  assert "Module.export" in str(info.value)
  assert not os.path.exists(tmp_path / "copy")
