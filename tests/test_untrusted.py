"""The untrusted-op scan: file, network and code ops are flagged with where
they are; the standard restore/save path and asset vocabularies are not."""
import importlib
import os
import shutil

import pytest

from hub_adapter import errors
from hub_adapter import untrusted

import fixtures  # pylint: disable=wrong-import-order

inspect_lib = importlib.import_module("hub_adapter.inspection")


@pytest.fixture(scope="module")
def file_model(tmp_path_factory):
  import tensorflow as tf

  class Files(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def read(self, path):
      return tf.io.read_file(path)

    @tf.function(input_signature=[tf.TensorSpec([], tf.string),
                                  tf.TensorSpec([], tf.string)])
    def write(self, path, text):
      tf.io.write_file(path, text)
      return text

  module = Files()
  path = str(tmp_path_factory.mktemp("untrusted") / "files")
  tf.saved_model.save(module, path, signatures={"read": module.read})
  return path


@pytest.fixture(scope="module")
def py_function_model(tmp_path_factory):
  import tensorflow as tf

  class Py(tf.Module):

    def __init__(self):
      super().__init__()
      self.scale = tf.Variable(2.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, x):
      doubled = tf.py_function(lambda v: v * 2.0, [x], tf.float32)
      return doubled * self.scale

  path = str(tmp_path_factory.mktemp("untrusted") / "py")
  tf.saved_model.save(Py(), path)
  return path


def _tf1_model(path, extra_ops, export_assets=True):
  import tensorflow as tf
  graph = tf.Graph()
  with graph.as_default():
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    w = tf.compat.v1.get_variable("w", initializer=3.0)
    y = x * w
    outputs = {"y": y}
    extra_ops(tf, outputs, w)
    info = tf.compat.v1.saved_model.utils.build_tensor_info
    sig = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        inputs={"x": info(x)}, outputs={k: info(v) for k, v in outputs.items()})
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      builder = tf.compat.v1.saved_model.Builder(path)
      assets = tf.compat.v1.get_collection(
          tf.compat.v1.GraphKeys.ASSET_FILEPATHS) if export_assets else None
      builder.add_meta_graph_and_variables(
          sess, ["serve"], signature_def_map={"serving_default": sig},
          assets_collection=assets)
      builder.save()
  return path


@pytest.fixture(scope="module")
def tf1_hostile_model(tmp_path_factory):
  def extra(tf, outputs, w):
    outputs["files"] = tf.io.matching_files("/etc/*")
    save = tf.raw_ops.SaveV2(prefix="/tmp/hub_adapter_stolen",
                             tensor_names=["w"], shape_and_slices=[""],
                             tensors=[w], name="exfiltrate")
    with tf.control_dependencies([save]):
      outputs["saved"] = tf.identity(w)
    # A table reading a host file by a constant path, not registered as an
    # asset (TextFileInitializer would register it, copying the file into
    # the model's assets/, which is fine).
    table = tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)
    init = tf.raw_ops.InitializeTableFromTextFileV2(
        table_handle=table, filename=tf.constant("/etc/hostname"),
        key_index=-1, value_index=-2, name="read_host_file")
    with tf.control_dependencies([init]):
      outputs["id"] = tf.raw_ops.LookupTableFindV2(
          table_handle=table, keys=tf.constant(["x"]),
          default_value=tf.constant(-1, tf.int64))
  return _tf1_model(str(tmp_path_factory.mktemp("untrusted") / "tf1"), extra)


@pytest.mark.parametrize("name", fixtures.locate().names())
def test_every_fixture_scans_clean(shared_fixtures, name):
  assert untrusted.scan(shared_fixtures.path(name)) == ()


def test_read_and_write_file_in_functions(file_model):
  flagged = untrusted.scan(file_model)
  by_op = {}
  for op in flagged:
    by_op.setdefault(op.op, []).append(op)
  assert set(by_op) == {"ReadFile", "WriteFile"}, flagged
  reads = by_op["ReadFile"]
  assert all(op.where.startswith("function '") for op in reads)
  assert any("signature 'read'" in op.where for op in reads)
  assert any("object 'read'" in op.where for op in reads)
  assert all("tags {serve}" in op.where for op in reads)
  assert by_op["WriteFile"][0].why == untrusted.RISKY_OPS["WriteFile"]
  assert any("object 'write'" in op.where for op in by_op["WriteFile"])


def test_py_function(py_function_model):
  flagged = untrusted.scan(py_function_model)
  assert {op.op for op in flagged} == {"EagerPyFunc"}
  assert all("object '__call__'" in op.where for op in flagged)
  assert "Python" in flagged[0].why


def test_tf1_graph_ops_outside_the_saver(tf1_hostile_model):
  flagged = untrusted.scan(tf1_hostile_model)
  got = {(op.op, op.node) for op in flagged}
  assert ("MatchingFiles", "MatchingFiles") in got
  assert ("SaveV2", "exfiltrate") in got
  assert ("InitializeTableFromTextFileV2", "read_host_file") in got
  # The saver's own SaveV2/RestoreV2 (save/...) are not flagged.
  assert not any(node.startswith("save/") for _, node in got), got
  where = {op.op: op.where for op in flagged}
  assert where["MatchingFiles"] == (
      "graph of tags {serve} (signature 'serving_default')")
  assert "not one of the model's assets" in {
      op.op: op.why for op in flagged}["InitializeTableFromTextFileV2"]


def test_vocabulary_assets_are_not_flagged(tmp_path):
  def extra(tf, outputs, w):
    del w
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("a\nb\n")
    table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
        str(vocab), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
        tf.lookup.TextFileIndex.LINE_NUMBER), -1)
    outputs["id"] = table.lookup(tf.constant("b"))
  path = _tf1_model(str(tmp_path / "m"), extra)
  assert inspect_lib.inspect_folder(path).assets == ("vocab.txt",)
  assert untrusted.scan(path) == ()
  # Not exported as an asset, the table would read the host path itself.
  path = _tf1_model(str(tmp_path / "n"), extra, export_assets=False)
  assert inspect_lib.inspect_folder(path).assets == ()
  assert [op.op for op in untrusted.scan(path)] == [
      "InitializeTableFromTextFileV2"]


@pytest.mark.parametrize("model", ["tf1", "tf2"])
def test_checkpoint_ops_are_flagged_without_a_saver_def(
    shared_fixtures, tmp_path, model):
  if model == "tf1":
    path = _tf1_model(str(tmp_path / "m"), lambda *_: None)
  else:
    path = str(tmp_path / "m")
    shutil.copytree(shared_fixtures.path("tf2_image_bn_reusable"), path)
    os.chmod(path, 0o755)
    os.chmod(os.path.join(path, "saved_model.pb"), 0o644)
  assert untrusted.scan(path) == ()  # The saver path is allowed...
  from tensorflow.core.protobuf import saved_model_pb2
  proto = saved_model_pb2.SavedModel()
  proto.CopyFrom(inspect_lib.read_saved_model(path))
  for meta_graph in proto.meta_graphs:
    meta_graph.ClearField("saver_def")
  with open(os.path.join(path, "saved_model.pb"), "wb") as f:
    f.write(proto.SerializeToString())
  ops = {op.op for op in untrusted.scan(path)}
  assert {"SaveV2", "RestoreV2"} <= ops  # ... and nothing else is.


def test_refuse_if_unsafe(file_model, shared_fixtures):
  info = inspect_lib.inspect(file_model)
  assert info.flagged_ops
  assert "Flagged ops: " in inspect_lib.describe(info)
  with pytest.raises(errors.UnsafeModelError) as e:
    untrusted.refuse_if_unsafe(info, "my://handle")
  message = str(e.value)
  assert isinstance(e.value, PermissionError)
  assert "Refusing to load 'my://handle' with safe=True" in message
  assert "ReadFile (node " in message and "WriteFile" in message
  assert "function '" in message
  assert e.value.flagged_ops == info.flagged_ops
  # An unscanned ModelInfo is scanned; a tuple of FlaggedOps works as is.
  with pytest.raises(errors.UnsafeModelError):
    untrusted.refuse_if_unsafe(inspect_lib.inspect_folder(file_model))
  with pytest.raises(errors.UnsafeModelError, match="1 op"):
    untrusted.refuse_if_unsafe(info.flagged_ops[:1])
  clean = inspect_lib.inspect_folder(shared_fixtures.path("tf1_text_embedding"))
  assert untrusted.refuse_if_unsafe(clean, "x") is None
  assert untrusted.refuse_if_unsafe(()) is None
