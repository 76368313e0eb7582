"""hub_adapter.tf1.backend: TF1 Hub modules behind hub_adapter.load in graph
mode, with the training and inference variants sharing one set of
variables."""
from __future__ import annotations

import importlib
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import fixtures
import hub_adapter
from hub_adapter import errors
from hub_adapter.model import LoadRequest
from hub_adapter.support import Format, Mode, Operation
from hub_adapter.tf1 import backend
from hub_adapter.tf1.module import Module

pytestmark = pytest.mark.tf1_compat

SHARED = fixtures.locate()
IMAGE = "tf1_image_feature_vector"
TEXT = "tf1_text_embedding"
keys = tf.compat.v1.GraphKeys


def _case(name, case_id):
  return next(c for c in SHARED.cases(name) if c.id == case_id)


def _init(session):
  session.run([tf.compat.v1.global_variables_initializer(),
               tf.compat.v1.tables_initializer()])


def _request(name, trainable=False, signature="default", **overrides):
  """A LoadRequest made by hand, as load() would make it."""
  info = importlib.import_module("hub_adapter.inspection").inspect_folder(
      SHARED.path(name))
  fields = dict(
      handle=SHARED.path(name), path=SHARED.path(name), info=info,
      mode=Mode.TF1_COMPAT,
      operation=Operation.FINE_TUNE if trainable else Operation.LOAD,
      signature=signature, tags=info.default_tags,
      train_tags=info.train_tags)
  fields.update(overrides)
  return LoadRequest(**fields)


def test_load_dispatches_to_this_backend():
  model = hub_adapter.load(SHARED.path(IMAGE))
  assert isinstance(model, backend.TF1HubModel)
  assert isinstance(model.raw, Module)
  assert model.format is Format.TF1_HUB and model.mode is Mode.TF1_COMPAT
  assert model.signature == "default"
  assert model.tags == frozenset()


def test_training_switches_variant_on_shared_variables():
  infer = _case(IMAGE, "tf1_infer_default")
  train = _case(IMAGE, "tf1_train_default")
  model = backend.load(_request(IMAGE))
  before = len(tf.compat.v1.global_variables())
  y_infer = model(infer.inputs()["default"])
  y_none = model(infer.inputs()["default"], training=False)
  y_train = model(train.inputs()["default"], training=True)
  assert len(tf.compat.v1.global_variables()) == before == 9
  with tf.compat.v1.Session() as session:
    _init(session)
    infer.assert_outputs({"default": session.run(y_infer)})
    infer.assert_outputs({"default": session.run(y_none)})
    train.assert_outputs({"default": session.run(y_train)})
    # One set of variables: changing it changes both variants.
    bias = model.variable_map["features/bias"]
    session.run(bias.assign(bias + 1.0))
    shifted_infer, shifted_train = session.run([y_infer, y_train])
  np.testing.assert_allclose(shifted_infer, infer.outputs()["default"] + 1.0,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(shifted_train, train.outputs()["default"] + 1.0,
                             rtol=1e-5, atol=1e-5)


def test_trainable_collections_and_attributes():
  model = backend.load(_request(IMAGE, trainable=True))
  assert model.raw.tags == frozenset({"train"})
  images = tf.zeros([2, 8, 8, 3])
  assert len(model.trainable_variables) == 7
  assert len(model.variables) == 9
  assert len(model.regularization_losses) == 2
  model(images)
  assert model.update_ops == []
  model(images, training=True)
  assert len(model.update_ops) == 2
  assert model.update_ops == tf.compat.v1.get_collection(keys.UPDATE_OPS)
  assert len(tf.compat.v1.get_collection(keys.REGULARIZATION_LOSSES)) == 2


def test_frozen_model_collects_nothing():
  model = backend.load(_request(IMAGE))
  model(tf.zeros([2, 8, 8, 3]), training=True)
  assert model.trainable_variables == []
  assert model.regularization_losses == []
  assert model.update_ops == []
  assert tf.compat.v1.trainable_variables() == []


def test_output_key_and_as_dict():
  case = _case(IMAGE, "tf1_infer_image_feature_vector")
  images = case.inputs()["images"]
  pre_logits = backend.load(_request(
      IMAGE, signature="image_feature_vector", output_key="pre_logits"))
  everything = backend.load(_request(
      IMAGE, signature="image_feature_vector", as_dict=True))
  single = pre_logits(images)
  outputs = everything(images=images)
  assert set(outputs) == {"default", "pre_logits", "feature_map"}
  with tf.compat.v1.Session() as session:
    _init(session)
    np.testing.assert_allclose(session.run(single),
                               case.outputs()["pre_logits"], rtol=1e-5,
                               atol=1e-5)
    case.assert_outputs(session.run(outputs))


def test_signatures_mapping_applies_each_signature():
  model = hub_adapter.load(SHARED.path(IMAGE))
  assert sorted(model.signatures) == sorted(SHARED.entry(IMAGE)["signatures"])
  case = _case(IMAGE, "tf1_infer_image_classification")
  outputs = model.signatures["image_classification"](**case.inputs())
  with tf.compat.v1.Session() as session:
    _init(session)
    case.assert_outputs(session.run(outputs))


def test_module_without_train_variant_ignores_training():
  case = _case(TEXT, "tf1_default_0")
  model = hub_adapter.load(SHARED.path(TEXT), trainable=True)
  assert model._request.train_tags is None  # pylint: disable=protected-access
  out = model(case.inputs()["sentences"], training=True)
  with tf.compat.v1.Session() as session:
    _init(session)
    case.assert_outputs({"default": session.run(out)})


def test_load_from_archive(tmp_path, monkeypatch):
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
  case = _case(TEXT, "tf1_default_1")
  model = hub_adapter.load(SHARED.archive(TEXT))
  assert model.path.startswith(str(tmp_path / "cache"))
  out = model(case.inputs())
  with tf.compat.v1.Session() as session:
    _init(session)
    case.assert_outputs({"default": session.run(out)})
  asset = list(model.raw.asset_paths.values())[0]
  assert asset == os.path.join(model.path, "assets", "tokens.txt")


def test_wrong_inputs_are_input_errors():
  model = hub_adapter.load(SHARED.path(IMAGE),
                           signature="image_feature_vector_with_bn_hparams")
  with pytest.raises(errors.InputError, match="batch_norm_momentum"):
    model(tf.zeros([1, 8, 8, 3]))
  with pytest.raises(errors.InputError, match="given twice"):
    model({"images": tf.zeros([1, 8, 8, 3])}, images=tf.zeros([1, 8, 8, 3]))


def _disagreeing_copy(tmp_path):
  """A copy of the image module whose train graph declares conv1/kernel
  with another shape than its inference graph."""
  from tensorflow.core.protobuf import saved_model_pb2
  folder = tmp_path / "disagree"
  shutil.copytree(SHARED.path(IMAGE), folder)
  saved_model = saved_model_pb2.SavedModel()
  saved_model.ParseFromString((folder / "saved_model.pb").read_bytes())
  for meta_graph in saved_model.meta_graphs:
    if "train" in meta_graph.meta_info_def.tags:
      for node in meta_graph.graph_def.node:
        if node.name == "conv1/kernel":
          node.attr["shape"].shape.dim[3].size = 5
  (folder / "saved_model.pb").write_bytes(saved_model.SerializeToString())
  return str(folder)


def test_variants_with_different_variables_are_refused(tmp_path):
  path = _disagreeing_copy(tmp_path)
  with pytest.raises(errors.ModelFormatError) as info:
    hub_adapter.load(path)
  message = str(info.value)
  assert "conv1/kernel" in message
  assert "[3, 3, 3, 4]" in message and "[3, 3, 3, 5]" in message
  assert "{'train'}" in message
  # Loading one variant only still works.
  with tf.Graph().as_default():
    Module(path)
