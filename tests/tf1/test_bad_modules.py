"""Broken or mismatched TF1 Hub modules fail with typed, explicit errors.

Each test copies a fixture into a temporary folder, breaks one thing, and
checks the error class (and the built-in it also derives from, as
tensorflow_hub raised it) and that the message names what was expected and
what was found.
"""
from __future__ import annotations

import shutil

import pytest
import tensorflow as tf

import fixtures
from hub_adapter import errors
from hub_adapter.tf1 import hub_protos
from hub_adapter.tf1 import spec as spec_lib
from hub_adapter.tf1.module import Module

pytestmark = pytest.mark.tf1_compat

SHARED = fixtures.locate()
HALF = "half_plus_two_v1"
TEXT = "tf1_text_embedding"
IMAGE = "tf1_image_feature_vector"
TOKENS = "tf1_tokens_signature_only"


def _copy(tmp_path, name):
  folder = tmp_path / name
  shutil.copytree(SHARED.path(name), folder)
  return folder


def _edit_saved_model(folder, edit):
  from tensorflow.core.protobuf import saved_model_pb2
  saved_model = saved_model_pb2.SavedModel()
  saved_model.ParseFromString((folder / "saved_model.pb").read_bytes())
  edit(saved_model)
  (folder / "saved_model.pb").write_bytes(saved_model.SerializeToString())


# The module definition ---------------------------------------------------------
def test_unknown_module_def_format(tmp_path):
  folder = _copy(tmp_path, HALF)
  (folder / "tfhub_module.pb").write_bytes(
      hub_protos.ModuleDef(format=2).SerializeToString())
  with pytest.raises(errors.ModelFormatError) as info:
    Module(str(folder))
  assert isinstance(info.value, ValueError)
  assert "format 2" in str(info.value)
  assert info.value.expected == 3 and info.value.received == 2


def test_unknown_required_feature(tmp_path):
  folder = _copy(tmp_path, HALF)
  (folder / "tfhub_module.pb").write_bytes(
      hub_protos.serialize_module_def(["sparse-everything"]))
  with pytest.raises(errors.ModelFormatError, match="'sparse-everything'"):
    spec_lib.load_module_spec(str(folder))


def test_corrupt_saved_model(tmp_path):
  folder = _copy(tmp_path, HALF)
  (folder / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff garbage")
  with pytest.raises(errors.ModelFormatError, match="saved_model.pb"):
    Module(str(folder))


def test_missing_saved_model(tmp_path):
  folder = _copy(tmp_path, HALF)
  (folder / "saved_model.pb").unlink()
  with pytest.raises(errors.ModelFormatError, match="saved_model.pb"):
    spec_lib.load_module_spec(str(folder))


def test_no_graphs(tmp_path):
  folder = _copy(tmp_path, HALF)
  _edit_saved_model(folder, lambda sm: sm.ClearField("meta_graphs"))
  with pytest.raises(errors.ModelFormatError, match="no graph"):
    spec_lib.load_module_spec(str(folder))


def test_duplicate_tag_sets(tmp_path):
  folder = _copy(tmp_path, HALF)
  _edit_saved_model(folder,
                    lambda sm: sm.meta_graphs.add().CopyFrom(sm.meta_graphs[0]))
  with pytest.raises(errors.ModelFormatError, match="two graph variants"):
    spec_lib.load_module_spec(str(folder))


def test_unsupported_collection(tmp_path):
  folder = _copy(tmp_path, HALF)

  def add(sm):
    sm.meta_graphs[0].collection_def["my_private_things"].node_list.value.append(
        "a:0")
  _edit_saved_model(folder, add)
  with pytest.raises(errors.ModelFormatError, match="'my_private_things'"):
    spec_lib.load_module_spec(str(folder))


# Tag sets and signatures --------------------------------------------------------
def test_missing_tag_set():
  with pytest.raises(errors.TagSetError) as info:
    Module(SHARED.path(TOKENS), tags={"train"})
  assert isinstance(info.value, KeyError)
  assert "{'train'}" in str(info.value) and "{}" in str(info.value)
  assert info.value.tags == ["train"] and info.value.available == [[]]


def test_missing_signature():
  module = Module(SHARED.path(TOKENS))
  with pytest.raises(errors.SignatureError) as info:
    module({"tokens": [["a"]], "sequence_len": [1]}, signature="default")
  assert info.value.signature == "default"
  assert info.value.available == ["tokens"]


# Inputs ----------------------------------------------------------------------
@pytest.mark.parametrize("inputs,expected,received", [
    ({"sentence": ["a"]}, "sentences", "sentence"),
    ({"sentences": [1.5, 2.0]}, "string", "float"),
    ({"sentences": [["a", "b"]]}, "[None]", "[1, 2]"),
])
def test_wrong_inputs_name_expected_and_given(inputs, expected, received):
  module = Module(SHARED.path(TEXT))
  with pytest.raises(errors.InputTypeError) as info:
    module(inputs)
  assert isinstance(info.value, TypeError)
  assert isinstance(info.value, errors.InputError)
  assert expected in str(info.value) and received in str(info.value)


# Variables and checkpoint --------------------------------------------------------
def test_missing_checkpoint(tmp_path):
  folder = _copy(tmp_path, HALF)
  shutil.rmtree(folder / "variables")
  with pytest.raises(errors.ModelFormatError, match="checkpoint"):
    Module(str(folder))


def test_checkpoint_lacks_a_variable(tmp_path):
  folder = _copy(tmp_path, HALF)
  shutil.rmtree(folder / "variables")
  with tf.Graph().as_default():
    a = tf.compat.v1.get_variable("a", shape=[], dtype=tf.float32)
    b = tf.compat.v1.get_variable("b", shape=[2], dtype=tf.float32)
    saver = tf.compat.v1.train.Saver([a, b])
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      saver.save(session, str(folder / "variables" / "variables"),
                 write_meta_graph=False)
  with pytest.raises(errors.ModelFormatError) as info:
    Module(str(folder))
  assert "b (graph [], checkpoint [2])" in str(info.value)


def test_unknown_op(tmp_path):
  folder = _copy(tmp_path, HALF)

  def rename(sm):
    for node in sm.meta_graphs[0].graph_def.node:
      if node.op == "Mul":
        node.op = "HubAdapterNoSuchOp"
  _edit_saved_model(folder, rename)
  with pytest.raises(errors.ModelFormatError, match="'HubAdapterNoSuchOp'"):
    Module(str(folder))


def test_asset_outside_assets_folder(tmp_path):
  from tensorflow.core.protobuf import meta_graph_pb2
  folder = _copy(tmp_path, TEXT)

  def escape(sm):
    for any_proto in sm.meta_graphs[0].collection_def[
        "saved_model_assets"].any_list.value:
      asset = meta_graph_pb2.AssetFileDef()
      any_proto.Unpack(asset)
      asset.filename = "../../secret.txt"
      any_proto.Pack(asset)
  _edit_saved_model(folder, escape)
  with pytest.raises(errors.ModelFormatError, match="outside"):
    Module(str(folder))


def test_missing_asset_node(tmp_path):
  from tensorflow.core.protobuf import meta_graph_pb2
  folder = _copy(tmp_path, TEXT)

  def rename(sm):
    for any_proto in sm.meta_graphs[0].collection_def[
        "saved_model_assets"].any_list.value:
      asset = meta_graph_pb2.AssetFileDef()
      any_proto.Unpack(asset)
      asset.tensor_info.name = "no/such/node:0"
      any_proto.Pack(asset)
  _edit_saved_model(folder, rename)
  with pytest.raises(errors.ModelFormatError, match="'no/such/node'"):
    Module(str(folder))
