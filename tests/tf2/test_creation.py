"""hub_adapter.save (hub_adapter.tf2.creation) in TF2 and TF1 compat mode,
reloaded with hub_adapter.load."""
import os

import numpy as np
import pytest

# pylint: disable=g-import-not-at-top,wrong-import-position
import tf2_models

import hub_adapter
from hub_adapter.tf2 import creation

tf1_compat = pytest.mark.tf1_compat


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _dense_module():
  tf = _tf()

  class Dense(tf.Module):

    def __init__(self):
      super().__init__()
      self.w = tf.Variable([[1.0], [2.0]], name="w")

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def __call__(self, x):
      return tf.matmul(x, self.w)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32,
                                                 name="x")])
    def scores(self, x):
      return {"scores": tf.matmul(x, self.w) * 10.0}

  return Dense()


def _saved_value(path, name):
  tf = _tf()
  reader = tf.train.load_checkpoint(os.path.join(path, "variables",
                                                 "variables"))
  key = [k for k in reader.get_variable_to_shape_map()
         if k.startswith(name + "/")][0]
  return reader.get_tensor(key)


def test_save_is_the_public_name():
  assert hub_adapter.save is creation.save


def test_save_in_tf2_and_load_back(tmp_path):
  tf = _tf()
  obj = _dense_module()
  path = str(tmp_path / "dense")
  creation.save(obj, path, signatures={"scores": obj.scores})
  model = hub_adapter.load(path)
  assert model.signature is None
  np.testing.assert_allclose(model(tf2_models.INPUT), tf2_models.INPUT @
                             np.array([[1.0], [2.0]]))
  scores = hub_adapter.load(path, signature="scores")(tf2_models.INPUT)
  np.testing.assert_allclose(scores, 10 * tf2_models.INPUT @
                             np.array([[1.0], [2.0]]))
  assert sorted(model.signatures) == ["scores"]
  options = tf.saved_model.SaveOptions(save_debug_info=False)
  creation.save(obj, str(tmp_path / "with_options"), options=options)
  assert os.path.exists(tmp_path / "with_options" / "saved_model.pb")


@tf1_compat
def test_save_in_graph_mode_uses_the_default_session(tmp_path):
  tf = _tf()
  obj = _dense_module()
  path = str(tmp_path / "trained")
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    session.run(obj.w.assign([[3.0], [4.0]]))  # "trained" values
    creation.save(obj, path)
  np.testing.assert_array_equal(_saved_value(path, "w"), [[3.0], [4.0]])
  with tf.Graph().as_default():
    model = hub_adapter.load(path)
    y = model(tf2_models.INPUT)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      np.testing.assert_allclose(session.run(y), tf2_models.INPUT @
                                 np.array([[3.0], [4.0]]))


@tf1_compat
def test_save_in_graph_mode_with_a_given_session(tmp_path):
  tf = _tf()
  obj = _dense_module()
  session = tf.compat.v1.Session()
  try:
    session.run(tf.compat.v1.global_variables_initializer())
    session.run(obj.w.assign([[5.0], [6.0]]))
    creation.save(obj, str(tmp_path / "given"), session=session)
  finally:
    session.close()
  np.testing.assert_array_equal(_saved_value(str(tmp_path / "given"), "w"),
                                [[5.0], [6.0]])


@tf1_compat
def test_save_in_graph_mode_without_a_session_saves_initial_values(tmp_path):
  obj = _dense_module()
  path = str(tmp_path / "fresh")
  creation.save(obj, path)
  np.testing.assert_array_equal(_saved_value(path, "w"), [[1.0], [2.0]])


@tf1_compat
def test_tiny_module_round_trip_in_graph_mode(tmp_path):
  tf = _tf()
  path = tf2_models.make_tiny(str(tmp_path / "tiny"))
  model = hub_adapter.load(path, output_key="y")
  y = model(tf2_models.INPUT)
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    np.testing.assert_allclose(session.run(y), tf2_models.expected_y())
