"""create_module_spec, add_signature and attach_message (TF1 Hub creation).

Creation tests run in the TF1 compat session; the refusals in TF2 run in the
TF2 session. The module built here (see created_modules.py) has two graph
variants, two signatures, a regularized kernel, batch norm with update ops,
dropout, a partitioned embedding, a vocabulary asset and two attached
messages.
"""
import os

import numpy as np
import pytest

import created_modules  # pylint: disable=g-import-not-at-top,wrong-import-position

from hub_adapter import errors  # pylint: disable=wrong-import-position
from hub_adapter.support import Format, Mode, Operation  # pylint: disable=wrong-import-position

tf1_compat = pytest.mark.tf1_compat


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _creation():
  from hub_adapter.tf1 import creation  # pylint: disable=g-import-not-at-top
  return creation


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
  return created_modules.write_vocab(str(tmp_path_factory.mktemp("vocab")))


@pytest.fixture(scope="module")
def spec(vocab):
  creation = _creation()
  return creation.create_module_spec(
      created_modules.make_module_fn(vocab, creation),
      tags_and_args=created_modules.TAGS_AND_ARGS)


def _meta_graph(spec, tags):
  for meta_graph in spec.saved_model.meta_graphs:
    if set(meta_graph.meta_info_def.tags) == set(tags):
      return meta_graph
  raise AssertionError(f"no meta graph for {tags}")


def _simple_fn(outputs=None):
  tf = _tf()
  creation = _creation()

  def module_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
    w = tf.compat.v1.get_variable("w", initializer=tf.constant([[1.0], [2.0]]))
    creation.add_signature(inputs=x, outputs=outputs(x, w) if outputs
                           else tf.matmul(x, w))
  return module_fn


# The spec's content ----------------------------------------------------------

@tf1_compat
def test_spec_has_both_graph_variants_and_signatures(spec):
  from hub_adapter.tf1 import spec as spec_lib  # pylint: disable=g-import-not-at-top
  assert isinstance(spec, spec_lib.NativeModuleSpec)
  assert spec.module_dir is None and spec.checkpoint_prefix is None
  assert sorted(sorted(t) for t in spec.get_tags()) == [[], ["train"]]
  for tags in (None, {"train"}):
    assert sorted(spec.get_signature_names(tags=tags)) == ["default",
                                                           "features"]
  default_in = spec.get_input_info_dict()
  assert list(default_in) == ["default"]
  assert default_in["default"].get_shape().as_list() == [None, 6, 6, 3]
  features_in = spec.get_input_info_dict("features", tags={"train"})
  assert sorted(features_in) == ["images", "text"]
  assert features_in["text"].dtype.name == "string"
  outputs = spec.get_output_info_dict("features")
  assert sorted(outputs) == ["dropped", "features", "logits",
                             "text_embedding"]
  assert outputs["logits"].get_shape().as_list() == [None, 5]


@tf1_compat
def test_meta_graphs_carry_tags_collections_and_stripped_attrs(spec):
  train = _meta_graph(spec, {"train"})
  infer = _meta_graph(spec, set())
  assert list(train.meta_info_def.tags) == ["train"]
  assert list(infer.meta_info_def.tags) == []
  assert train.meta_info_def.stripped_default_attrs
  assert len(train.collection_def["update_ops"].node_list.value) == 2
  assert "update_ops" not in infer.collection_def
  for meta_graph in (train, infer):
    losses = meta_graph.collection_def["regularization_losses"]
    assert len(losses.node_list.value) == 1
    # Seven plain variables and two partitions of the embedding.
    assert len(meta_graph.collection_def["variables"].bytes_list.value) == 9


@tf1_compat
def test_attached_messages_are_stored_per_graph_variant(spec):
  from hub_adapter.tf1 import hub_protos  # pylint: disable=g-import-not-at-top
  tf = _tf()
  for tags in (None, {"train"}):
    info = spec.get_attached_message("image_module_info",
                                     hub_protos.ImageModuleInfo, tags=tags)
    assert (info.default_image_size.height,
            info.default_image_size.width) == (6, 6)
    labels = spec.get_attached_message("label_info", tf.train.Example,
                                       tags=tags)
    assert labels == created_modules.label_info()
  assert spec.get_attached_message("missing", tf.train.Example) is None


@tf1_compat
def test_assets_are_kept_in_disk_form_with_their_sources(spec, vocab):
  tf = _tf()
  from tensorflow.core.protobuf import meta_graph_pb2  # pylint: disable=g-import-not-at-top
  assert spec.asset_sources == {"vocab.txt": os.path.abspath(vocab)}
  for tags in ({"train"}, set()):
    meta_graph = _meta_graph(spec, tags)
    (tensor,) = meta_graph.collection_def["asset_filepaths"].node_list.value
    (packed,) = meta_graph.collection_def["saved_model_assets"].any_list.value
    asset = meta_graph_pb2.AssetFileDef()
    packed.Unpack(asset)
    assert asset.filename == "vocab.txt"
    assert asset.tensor_info.name == tensor
    node = [n for n in meta_graph.graph_def.node
            if n.name == tensor.split(":")[0]][0]
    # No constant keeps the creator's absolute path.
    assert node.attr["value"].tensor.string_val == [b"SAVEDMODEL-ASSET"]
    assert not [n.name for n in meta_graph.graph_def.node if n.op == "Const"
                and tf.compat.as_bytes(vocab) in n.SerializeToString()]


@tf1_compat
def test_same_base_name_from_two_folders_gets_two_asset_names(tmp_path):
  tf = _tf()
  creation = _creation()
  paths = []
  for folder in ("a", "b"):
    (tmp_path / folder).mkdir()
    paths.append(created_modules.write_vocab(str(tmp_path / folder)))

  def module_fn():
    text = tf.compat.v1.placeholder(tf.string, [None])
    out = []
    for path in paths:
      table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
          path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
          tf.lookup.TextFileIndex.LINE_NUMBER), -1)
      out.append(table.lookup(text))
    creation.add_signature(inputs=text, outputs=tf.stack(out))

  spec = creation.create_module_spec(module_fn)
  assert spec.asset_sources == {"vocab.txt": paths[0],
                                "vocab_1.txt": paths[1]}


@tf1_compat
def test_module_fn_runs_in_new_graphs_with_resource_variables():
  tf = _tf()
  creation = _creation()
  seen = []

  def module_fn(training):
    seen.append((tf.compat.v1.get_default_graph(), training))
    x = tf.compat.v1.placeholder(tf.float32, [None])
    v = tf.compat.v1.get_variable("v", initializer=1.0)
    assert v.op.type == "VarHandleOp"  # A resource variable.
    creation.add_signature(inputs=x, outputs=x * v)

  caller = tf.compat.v1.get_default_graph()
  ops_before = len(caller.get_operations())
  creation.create_module_spec(module_fn, [({"train"}, {"training": True}),
                                          (set(), {"training": False})])
  assert [t for _, t in seen] == [True, False]
  assert seen[0][0] is not seen[1][0]
  assert all(g is not caller for g, _ in seen)
  assert len(caller.get_operations()) == ops_before


@tf1_compat
def test_later_definitions_of_a_name_win():
  tf = _tf()
  creation = _creation()
  from hub_adapter.tf1 import hub_protos  # pylint: disable=g-import-not-at-top

  def module_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    creation.add_signature(inputs=x, outputs=x + 1.0)
    creation.add_signature(inputs={"y": x}, outputs={"z": x * 3.0})
    for size in (4, 7):
      info = hub_protos.ImageModuleInfo()
      info.default_image_size.height = size
      info.default_image_size.width = size
      creation.attach_message("image_module_info", info)

  spec = creation.create_module_spec(module_fn)
  assert list(spec.get_input_info_dict()) == ["y"]
  assert list(spec.get_output_info_dict()) == ["z"]
  info = spec.get_attached_message("image_module_info",
                                   hub_protos.ImageModuleInfo)
  assert info.default_image_size.height == 7


@tf1_compat
def test_sparse_and_ragged_signature_values_are_described():
  tf = _tf()
  creation = _creation()

  def module_fn():
    ids = tf.compat.v1.sparse_placeholder(tf.int64, [None, None], name="ids")
    values = tf.compat.v1.placeholder(tf.float32, [None], name="values")
    splits = tf.compat.v1.placeholder(tf.int64, [None], name="splits")
    ragged = tf.RaggedTensor.from_row_splits(values, splits, validate=False)
    creation.add_signature(
        inputs={"ids": ids, "ragged": ragged},
        outputs={"count": tf.sparse.reduce_sum(ids, axis=1),
                 "sums": tf.reduce_sum(ragged, axis=1)})

  spec = creation.create_module_spec(module_fn)
  (meta_graph,) = spec.saved_model.meta_graphs
  inputs = meta_graph.signature_def["default"].inputs
  assert inputs["ids"].WhichOneof("encoding") == "coo_sparse"
  assert inputs["ragged"].WhichOneof("encoding") == "composite_tensor"
  infos = spec.get_input_info_dict()
  assert infos["ids"].is_sparse
  assert infos["ragged"].is_composite and not infos["ragged"].is_sparse


# Refusals in TF1 compat mode --------------------------------------------------

@tf1_compat
def test_drop_collections_removes_an_unsupported_collection():
  tf = _tf()
  creation = _creation()

  def module_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    tf.compat.v1.add_to_collection("my_summaries", tf.reduce_sum(x))
    tf.compat.v1.add_to_collection(tf.compat.v1.GraphKeys.LOSSES,
                                   tf.reduce_sum(x))
    creation.add_signature(inputs=x, outputs=x * 2.0)

  with pytest.raises(errors.ModelFormatError) as info:
    creation.create_module_spec(module_fn)
  message = str(info.value)
  assert "'losses', 'my_summaries'" in message
  assert "drop_collections=['losses', 'my_summaries']" in message
  assert isinstance(info.value, ValueError)  # As tensorflow_hub raised.

  spec = creation.create_module_spec(
      module_fn, drop_collections=["my_summaries", "losses"])
  (meta_graph,) = spec.saved_model.meta_graphs
  assert "my_summaries" not in meta_graph.collection_def
  assert "losses" not in meta_graph.collection_def


@tf1_compat
@pytest.mark.parametrize("tags_and_args, expected", [
    ([({"train"}, {}), ({"train"}, {})], "appears more than once"),
    ([("train", {})], "not a set of strings"),
    ([({"train"},)], "not a (tags, kwargs) pair"),
    ([(set(), ["training"])], "not a dict of keyword arguments"),
])
def test_bad_tags_and_args_are_refused(tags_and_args, expected):
  with pytest.raises(errors.ModelFormatError) as info:
    _creation().create_module_spec(_simple_fn(), tags_and_args=tags_and_args)
  assert expected in str(info.value)


@tf1_compat
def test_a_graph_without_signature_is_refused():
  tf = _tf()

  def module_fn(training):
    tf.compat.v1.placeholder(tf.float32, [None])

  with pytest.raises(errors.ModelFormatError) as info:
    _creation().create_module_spec(module_fn, [({"train"}, {"training": 1})])
  assert "no signature in the graph for tags ['train']" in str(info.value)
  assert "add_signature" in str(info.value)


@tf1_compat
def test_a_missing_asset_file_is_refused_at_creation(tmp_path):
  tf = _tf()
  creation = _creation()
  missing = str(tmp_path / "nowhere.txt")

  def module_fn():
    text = tf.compat.v1.placeholder(tf.string, [None])
    table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
        missing, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
        tf.lookup.TextFileIndex.LINE_NUMBER), -1)
    creation.add_signature(inputs=text, outputs=table.lookup(text))

  with pytest.raises(errors.ModelFormatError) as info:
    creation.create_module_spec(module_fn)
  assert missing in str(info.value)


@tf1_compat
def test_non_tensor_signature_values_are_refused():
  with pytest.raises(errors.ModelFormatError) as info:
    _creation().create_module_spec(_simple_fn(outputs=lambda x, w: w))
  assert "tf.identity(variable)" in str(info.value)
  with pytest.raises(errors.ModelFormatError) as info:
    _creation().create_module_spec(_simple_fn(outputs=lambda x, w: [x]))
  assert "is a list" in str(info.value)


@tf1_compat
def test_colocated_signature_input_is_refused():
  tf = _tf()
  creation = _creation()

  def module_fn():
    anchor = tf.constant(1.0)
    with tf.compat.v1.colocate_with(anchor):
      x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    creation.add_signature(inputs=x, outputs=x + anchor)

  with pytest.raises(errors.ModelFormatError) as info:
    creation.create_module_spec(module_fn)
  assert "tf.colocate_with" in str(info.value)


@tf1_compat
def test_signature_and_attachment_outside_module_fn_are_refused():
  tf = _tf()
  creation = _creation()
  x = tf.compat.v1.placeholder(tf.float32, [None])
  with pytest.raises(errors.ModelFormatError) as info:
    creation.add_signature(inputs=x, outputs=x)
  assert "outside a module_fn" in str(info.value)
  with pytest.raises(errors.ModelFormatError):
    creation.attach_message("label_info", created_modules.label_info())


@tf1_compat
@pytest.mark.parametrize("key", ["1abc", "a-b", "", "a.b"])
def test_malformed_attachment_keys_are_refused(key):
  tf = _tf()
  creation = _creation()

  def module_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None])
    creation.add_signature(inputs=x, outputs=x)
    creation.attach_message(key, created_modules.label_info())

  with pytest.raises(errors.ModelFormatError) as info:
    creation.create_module_spec(module_fn)
  assert "malformed key" in str(info.value)


@tf1_compat
def test_public_names_are_the_creation_functions():
  import hub_adapter  # pylint: disable=g-import-not-at-top
  creation = _creation()
  assert hub_adapter.create_module_spec is creation.create_module_spec
  assert hub_adapter.add_signature is creation.add_signature
  assert hub_adapter.attach_message is creation.attach_message


# The created spec applied by hub_adapter's Module, before any export ----------

@tf1_compat
def test_created_spec_applies_with_initializers_and_source_assets(spec):
  tf = _tf()
  from hub_adapter.tf1 import module as module_lib  # pylint: disable=g-import-not-at-top
  module = module_lib.Module(spec)
  x = created_modules.inputs()
  out = module(dict(images=x["images"], text=x["text"]), signature="features",
               as_dict=True)
  with tf.compat.v1.Session() as session:
    session.run([tf.compat.v1.global_variables_initializer(),
                 tf.compat.v1.tables_initializer()])
    values = session.run(out)
    embeddings = session.run(module.variable_map["embeddings"])
  table = np.concatenate(embeddings)
  # "the quick fox" -> ids 0, 1, 3 (sqrtn); "zebra" -> the OOV row 8;
  # the empty sentence -> zeros.
  np.testing.assert_allclose(values["text_embedding"][0],
                             table[[0, 1, 3]].sum(0) / np.sqrt(3), rtol=1e-5)
  np.testing.assert_allclose(values["text_embedding"][2], table[8], rtol=1e-5)
  np.testing.assert_array_equal(values["text_embedding"][3], 0.0)
  np.testing.assert_allclose(values["dropped"], values["features"])


# TF2 mode: creation works as in 0.15; graph state outside a graph is refused

def _assert_refused(error):
  assert isinstance(error, errors.UnsupportedOperationError)
  assert isinstance(error, NotImplementedError)
  assert error.format is Format.TF1_HUB
  assert error.operation is Operation.CREATE
  assert error.mode is Mode.TF2
  assert "tf.saved_model.save" in error.remedy
  assert "hub_adapter.save" in error.remedy
  assert "disable_v2_behavior" in error.remedy


def test_create_module_spec_works_in_tf2_and_export_in_a_graph(tmp_path):
  # tensorflow_hub 0.15's way from an eager program: the spec is built in
  # graphs of its own; Module and export run in a graph block.
  import hub_adapter  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf1 import module as module_lib  # pylint: disable=g-import-not-at-top
  tf = _tf()
  spec = _creation().create_module_spec(
      _simple_fn(), tags_and_args=[({"train"}, {}), (set(), {})])
  assert tf.executing_eagerly()  # The caller's context is untouched.
  assert sorted(sorted(t) for t in spec.get_tags()) == [[], ["train"]]
  target = tmp_path / "export"
  target.mkdir()
  (target / "notes.txt").write_text("kept")  # 0.15 exports next to it.
  with tf.compat.v1.Graph().as_default():
    module = module_lib.Module(spec, trainable=True)
    y = module(np.array([[1.0, 1.0]], np.float32))
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      session.run(module.variable_map["w"].assign([[3.0], [4.0]]))
      np.testing.assert_allclose(session.run(y), [[7.0]])
      module.export(str(target), session)
  assert sorted(os.listdir(target)) == [
      "assets", "notes.txt", "saved_model.pb", "tfhub_module.pb",
      "variables"]
  model = hub_adapter.load(str(target))
  np.testing.assert_allclose(model(tf.constant([[1.0, 2.0]])), [[11.0]])
  # ModuleSpec.export from a checkpoint works from the eager program too.
  again = str(tmp_path / "from_checkpoint")
  spec.export(again, checkpoint_path=str(target / "variables" / "variables"))
  np.testing.assert_allclose(
      hub_adapter.load(again)(tf.constant([[1.0, 2.0]])), [[11.0]])


def test_module_of_a_created_spec_outside_a_graph_is_refused_in_tf2():
  from hub_adapter.tf1 import module as module_lib  # pylint: disable=g-import-not-at-top
  spec = _creation().create_module_spec(_simple_fn())
  with pytest.raises(errors.UnsupportedOperationError) as info:
    module_lib.Module(spec)
  _assert_refused(info.value)
  assert "outside any graph" in str(info.value)
  assert "tf.compat.v1.Graph().as_default()" in info.value.remedy


def test_add_signature_and_attach_message_are_refused_in_tf2():
  tf = _tf()
  with pytest.raises(errors.UnsupportedOperationError) as info:
    _creation().add_signature(inputs=tf.constant([1.0]),
                              outputs=tf.constant([2.0]))
  _assert_refused(info.value)
  assert "add_signature() was called in TF2 mode" in str(info.value)
  with pytest.raises(errors.UnsupportedOperationError) as info:
    _creation().attach_message("label_info", created_modules.label_info())
  _assert_refused(info.value)
