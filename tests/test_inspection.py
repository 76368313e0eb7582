"""inspect_folder / inspect / describe / to_json against the shared fixtures."""
import base64
import importlib
import json
import os
import shutil

import numpy as np
import pytest

from hub_adapter import errors
from hub_adapter.support import Format

inspect_lib = importlib.import_module("hub_adapter.inspection")

import fixtures  # pylint: disable=wrong-import-order

ALL = fixtures.locate().names()


def _copy(shared_fixtures, name, tmp_path):
  dst = tmp_path / name
  shutil.copytree(shared_fixtures.path(name), dst)
  for root, dirs, files in os.walk(dst):  # The shared copies are read-only.
    for n in dirs + files:
      os.chmod(os.path.join(root, n), 0o755)
  os.chmod(dst, 0o755)
  return str(dst)


@pytest.mark.parametrize("name", ALL)
def test_signatures_tags_and_variables_match_manifest(shared_fixtures, name):
  entry = shared_fixtures.entry(name)
  info = inspect_lib.inspect_folder(shared_fixtures.path(name))
  assert info.format == Format(entry["format"])
  assert sorted(map(sorted, info.tag_sets)) == sorted(
      map(sorted, entry["tag_sets"]))
  want_sigs = entry["signatures"]
  for tags in info.tag_sets:
    got = info.signatures[tags]
    assert sorted(got) == sorted(want_sigs), tags
    for sig_name, want in want_sigs.items():
      for side in ("inputs", "outputs"):
        got_side = getattr(got[sig_name], side)
        assert sorted(got_side) == sorted(want[side])
        for key, spec in want[side].items():
          tensor = got_side[key]
          assert tensor.dtype == spec["dtype"], (sig_name, key)
          want_shape = None if spec["shape"] is None else tuple(spec["shape"])
          assert tensor.shape == want_shape, (sig_name, key)
          assert tensor.is_composite == spec.get("is_composite", False)
  got_vars = {v.name: v for v in info.variables}
  assert sorted(got_vars) == sorted(v["name"] for v in entry["variables"])
  for want in entry["variables"]:
    var = got_vars[want["name"]]
    assert var.dtype == want["dtype"]
    assert list(var.shape) == want["shape"]
    assert var.trainable == want["trainable"]
    assert var.bytes == 4 * int(np.prod(want["shape"]))  # All are float32.
  assert list(info.assets) == entry.get("assets", [])


@pytest.mark.parametrize("name", fixtures.locate().names("tf1_hub"))
def test_tf1_module_def_and_attachments(shared_fixtures, name):
  entry = shared_fixtures.entry(name)
  info = inspect_lib.inspect_folder(shared_fixtures.path(name))
  assert info.module_format_version == 3
  assert info.required_features == ()
  assert not info.has_call and info.call_accepts_training is None
  want = {}
  for group in entry.get("attached_messages", []):
    want[frozenset(group["tags"])] = {
        k: base64.b64decode(m["serialized_base64"])
        for k, m in group["messages"].items()}
  assert dict(info.attachments) == want
  assert list(info.attached_messages) == sorted(
      {k for msgs in want.values() for k in msgs})


@pytest.mark.parametrize("name", fixtures.locate().names("tf2_saved_model"))
def test_tf2_call_and_training(shared_fixtures, name):
  entry = shared_fixtures.entry(name)
  info = inspect_lib.inspect_folder(shared_fixtures.path(name))
  assert info.module_format_version is None
  assert info.has_call == entry["has_call"]
  if entry["has_call"]:
    assert info.call_accepts_training == entry["call"]["has_training_arg"]
  else:
    assert info.call_accepts_training is None


def test_tf2_variable_bytes_come_from_the_checkpoint_index(shared_fixtures):
  info = inspect_lib.inspect_folder(shared_fixtures.path("tf2_image_bn_reusable"))
  index = inspect_lib.read_bundle_index(info.path)
  by_key = {e.key: e.size for e in index.entries}
  # The object graph path of the first listed variable is variables/0.
  assert by_key["variables/0/.ATTRIBUTES/VARIABLE_VALUE"] == info.variables[0].bytes
  assert info.variable_bytes == sum(
      s for k, s in by_key.items() if k.startswith("variables/"))


def test_partitioned_tf1_variable_is_listed_whole(shared_fixtures):
  info = inspect_lib.inspect_folder(shared_fixtures.path("tf1_text_embedding"))
  (var,) = info.variables
  assert (var.name, var.shape, var.bytes) == ("embeddings", (22, 8), 22 * 8 * 4)


def test_describe_and_to_json(shared_fixtures):
  info = inspect_lib.inspect(shared_fixtures.path("tf1_image_feature_vector"))
  text = inspect_lib.describe(info)
  assert "Format: TF1 Hub (tf1_hub)" in text
  assert "{} (empty)" in text and "Signatures of tag set {train}:" in text
  assert "image_feature_vector_with_bn_hparams:" in text
  assert "in  batch_norm_momentum: float32 []" in text
  assert "out feature_map: float32 [?, 8, 8, 4]" in text
  assert "Flagged ops: none" in text
  data = json.loads(json.dumps(inspect_lib.to_json(info)))
  assert data["format"] == "tf1_hub"
  assert sorted(data["tag_sets"]) == [[], ["train"]]
  (sigs,) = [s for s in data["signatures"] if s["tags"] == ["train"]]
  assert sigs["signatures"]["default"]["outputs"]["default"] == {
      "dtype": "float32", "shape": [None, 6], "is_composite": False}
  assert data["variable_count"] == 9
  assert data["flagged_ops"] == []

  tf2 = inspect_lib.inspect_folder(shared_fixtures.path("half_plus_two_v1"))
  assert "<unknown rank>" in inspect_lib.describe(tf2)
  assert inspect_lib.to_json(tf2)["flagged_ops"] is None
  assert inspect_lib.to_json(tf2)["signatures"][0]["signatures"]["default"][
      "inputs"]["default"]["shape"] is None


def test_describe_tf2_call(shared_fixtures):
  text = inspect_lib.describe(inspect_lib.inspect_folder(
      shared_fixtures.path("tf2_text_vocab_asset")))
  assert "__call__: yes (no `training` argument)" in text
  assert "Assets: vocab.txt" in text
  text = inspect_lib.describe(inspect_lib.inspect_folder(
      shared_fixtures.path("tf2_signatures_only")))
  assert "__call__: no (use a signature)" in text


def test_parsed_proto_is_cached_until_the_file_changes(shared_fixtures,
                                                      tmp_path):
  path = _copy(shared_fixtures, "half_plus_two_v1", tmp_path)
  first = inspect_lib.read_saved_model(path)
  assert inspect_lib.read_saved_model(path) is first
  pb = os.path.join(path, "saved_model.pb")
  stat = os.stat(pb)
  os.utime(pb, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
  assert inspect_lib.read_saved_model(path) is not first


def test_saved_model_pbtxt_is_read(shared_fixtures, tmp_path):
  from google.protobuf import text_format
  path = _copy(shared_fixtures, "tf2_signatures_only", tmp_path)
  proto = inspect_lib.read_saved_model(path)
  with open(os.path.join(path, "saved_model.pbtxt"), "w") as f:
    f.write(text_format.MessageToString(proto))
  os.remove(os.path.join(path, "saved_model.pb"))
  info = inspect_lib.inspect_folder(path)
  assert sorted(info.signatures[frozenset({"serve"})]) == [
      "embed", "serve", "serving_default"]


def test_missing_empty_and_non_model_folders(tmp_path):
  missing = str(tmp_path / "nope")
  with pytest.raises(errors.HandleError, match="does not exist") as e:
    inspect_lib.inspect_folder(missing, handle="my-handle")
  assert "my-handle" in str(e.value)
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(errors.HandleError, match="is empty"):
    inspect_lib.inspect_folder(str(empty))
  other = tmp_path / "other"
  other.mkdir()
  (other / "model.h5").write_bytes(b"x")
  (other / "variables").mkdir()
  with pytest.raises(errors.ModelFormatError) as e:
    inspect_lib.inspect_folder(str(other))
  assert "neither saved_model.pb nor saved_model.pbtxt" in str(e.value)
  assert "Found: model.h5, variables/" in str(e.value)
  with pytest.raises(errors.HandleError, match="is a file"):
    inspect_lib.inspect_folder(str(other / "model.h5"))


@pytest.mark.parametrize("data,match", [
    (b"\x08\x02", "format version 2"),
    (b"\x08\x04", "format version 4"),
    (b"", "format version 0"),
    (b"\x08\x03\x12\x0bfancy_stuff", "requires unknown features 'fancy_stuff'"),
])
def test_unknown_module_versions_and_features_are_refused(
    shared_fixtures, tmp_path, data, match):
  path = _copy(shared_fixtures, "half_plus_two_v1", tmp_path)
  with open(os.path.join(path, "tfhub_module.pb"), "wb") as f:
    f.write(data)
  with pytest.raises(errors.ModelFormatError, match=match) as e:
    inspect_lib.inspect_folder(path, handle="hub://x")
  assert e.value.file == "tfhub_module.pb"
  assert "hub://x" in str(e.value)


def _tf1_composite_model(path):
  import tensorflow as tf
  graph = tf.Graph()
  with graph.as_default():
    sparse = tf.compat.v1.sparse_placeholder(tf.int64, shape=[None, 5],
                                             name="ids")
    ragged = tf.RaggedTensor.from_row_lengths(
        tf.compat.v1.placeholder(tf.float32, [None], name="values"),
        tf.compat.v1.placeholder(tf.int64, [None], name="lengths"))
    dense = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
    info = tf.compat.v1.saved_model.utils.build_tensor_info
    sig = tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        inputs={"ids": info(sparse), "ragged": info(ragged), "x": info(dense)},
        outputs={"sum": info(tf.sparse.reduce_sum(sparse, axis=1)),
                 "x2": info(dense * 2.0), "ragged_out": info(ragged * 2.0)})
    with tf.compat.v1.Session(graph=graph) as sess:
      builder = tf.compat.v1.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(
          sess, ["serve"], signature_def_map={"serving_default": sig})
      builder.save()


def test_composite_inputs_are_marked(tmp_path):
  path = str(tmp_path / "composite")
  _tf1_composite_model(path)
  info = inspect_lib.inspect_folder(path)
  assert info.format == Format.TF2_SAVED_MODEL
  assert info.variables == ()
  sig = info.signatures[frozenset({"serve"})]["serving_default"]
  assert sig.inputs["ids"].is_composite and sig.inputs["ids"].dtype == "int64"
  assert sig.inputs["ragged"].is_composite
  assert sig.inputs["ragged"].dtype == "float32"
  assert not sig.outputs["sum"].is_composite
  assert sig.outputs["x2"].shape == (None, 3)
  assert sig.inputs["x"] == sig.outputs["x2"].__class__("x", "float32",
                                                         (None, 3), False)
  assert sig.outputs["ragged_out"].is_composite


def test_inspect_resolves_and_scans(shared_fixtures):
  info = inspect_lib.inspect(shared_fixtures.path("tf2_text_vocab_asset"))
  assert info.flagged_ops == ()
  info = inspect_lib.inspect(shared_fixtures.path("tf2_text_vocab_asset"),
                             scan=False)
  assert info.flagged_ops is None


def test_import_does_not_import_tensorflow():
  import subprocess
  import sys
  code = ("import sys, hub_adapter.inspection, hub_adapter.handles, "
          "hub_adapter.integrity, hub_adapter.untrusted, hub_adapter.cache, "
          "hub_adapter.archives; print('tensorflow' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, check=True)
  assert out.stdout.strip() == "False"


def test_load_parses_variables_index_once(shared_fixtures, tmp_path,
                                          monkeypatch):
  # inspect_folder and integrity.check_folder both read variables.index; the
  # parse is cached by file stamp so a load pays for it once.
  import shutil  # pylint: disable=g-import-not-at-top
  from hub_adapter import integrity  # pylint: disable=g-import-not-at-top
  from hub_adapter import proto_readers  # pylint: disable=g-import-not-at-top
  folder = str(tmp_path / "model")
  shutil.copytree(shared_fixtures.path("tf2_image_bn_reusable"), folder)
  calls = []
  real = proto_readers.parse_bundle_index

  def counting(data):
    calls.append(len(data))
    return real(data)

  monkeypatch.setattr(proto_readers, "parse_bundle_index", counting)
  info = inspect_lib.inspect_folder(folder)
  integrity.check_folder(info, folder)
  inspect_lib.inspect_folder(folder)
  assert len(calls) == 1
  index = os.path.join(folder, "variables", "variables.index")
  os.utime(index, ns=(1, 1))  # A changed file is parsed again.
  inspect_lib.inspect_folder(folder)
  assert len(calls) == 2


def test_protos_are_read_without_importing_tensorflow(shared_fixtures):
  # inspect_folder and the hostile-op scan read saved_model.pb with
  # TensorFlow's own proto classes but without `import tensorflow`; a later
  # import gets the same classes, and loading still works.
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = (
      "import sys\n"
      "from hub_adapter import inspection, untrusted\n"
      "info = inspection.inspect_folder(sys.argv[1])\n"
      "assert untrusted.scan(info) == ()\n"
      "proto = inspection.read_saved_model(sys.argv[1])\n"
      "print('tensorflow' in sys.modules, info.variables[0].dtype)\n"
      "import tensorflow as tf\n"
      "from tensorflow.core.protobuf import saved_model_pb2\n"
      "print(type(proto) is saved_model_pb2.SavedModel,\n"
      "      len(tf.saved_model.load(sys.argv[1]).variables) > 0)\n")
  out = subprocess.run([sys.executable, "-c", code,
                        shared_fixtures.path("tf2_image_bn_reusable")],
                       capture_output=True, text=True, check=True).stdout
  assert out.split() == ["False", "float32", "True", "True"]


def test_dtype_names_and_sizes_match_tf_dtypes():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hub_adapter import proto_readers  # pylint: disable=g-import-not-at-top
  for value in list(range(0, 140)) + [999]:
    try:
      dtype = tf.dtypes.as_dtype(value)
    except (TypeError, ValueError, KeyError):
      assert proto_readers.dtype_name(value) == f"unknown_dtype_{value}"
      continue
    name = dtype.base_dtype.name
    assert proto_readers.dtype_name(value) == name, value
    want = None if name in ("string", "resource", "variant") else dtype.size
    assert proto_readers.dtype_size(name) == want, name
