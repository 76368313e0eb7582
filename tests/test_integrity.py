"""Corrupt models give ModelFormatError naming the file (inspect_folder and
integrity.check_folder), never a DecodeError or a crash."""
import importlib
import os
import shutil

import pytest

from hub_adapter import errors
from hub_adapter import integrity

import fixtures  # pylint: disable=wrong-import-order

inspect_lib = importlib.import_module("hub_adapter.inspection")

DATA = os.path.join("variables", "variables.data-00000-of-00001")
INDEX = os.path.join("variables", "variables.index")


def _copy(shared_fixtures, name, tmp_path):
  return shared_fixtures.writable_copy(name, str(tmp_path))


def _check(path, handle="the-handle"):
  info = inspect_lib.inspect_folder(path, handle=handle)
  integrity.check_folder(info, handle)
  return info


def _rewrite(path, file, fn):
  full = os.path.join(path, file)
  with open(full, "rb") as f:
    data = f.read()
  with open(full, "wb") as f:
    f.write(fn(data))


def _garble(data):
  middle = len(data) // 2
  return data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + 16]) + \
      data[middle + 16:]


@pytest.mark.parametrize("name", fixtures.locate().names())
def test_every_fixture_is_intact(shared_fixtures, name):
  _check(shared_fixtures.path(name))


@pytest.mark.parametrize("name", ["tf1_image_feature_vector",
                                  "tf2_keras_savedmodel"])
@pytest.mark.parametrize("damage", [
    lambda d: d[: len(d) // 2], lambda d: d[:7], _garble,
    lambda d: os.urandom(len(d)), lambda d: b"",
])
def test_damaged_saved_model_pb(shared_fixtures, tmp_path, name, damage):
  path = _copy(shared_fixtures, name, tmp_path)
  _rewrite(path, "saved_model.pb", damage)
  with pytest.raises(errors.ModelFormatError) as e:
    _check(path)
  assert e.value.file == "saved_model.pb"
  assert "saved_model.pb" in str(e.value) and "the-handle" in str(e.value)


@pytest.mark.parametrize("data,match", [
    (b"\xff\xff", "is corrupt"), (b"\x08", "is corrupt"),
    (b"\x12\x05ab", "is corrupt"), (b"\x1a\x01x", "format version 0"),
])
def test_damaged_tfhub_module_pb(shared_fixtures, tmp_path, data, match):
  path = _copy(shared_fixtures, "tf1_tokens_signature_only", tmp_path)
  _rewrite(path, "tfhub_module.pb", lambda _: data)
  with pytest.raises(errors.ModelFormatError, match=match) as e:
    _check(path)
  assert e.value.file == "tfhub_module.pb"


@pytest.mark.parametrize("damage,match", [
    (lambda d: d[: len(d) // 2], "no table magic number"),
    (lambda d: d[:-1], "no table magic number"),
    (lambda d: d[:10] + bytes([d[10] ^ 0xFF]) + d[11:], "checksum mismatch"),
    (lambda d: b"", "only 0 bytes"),
])
@pytest.mark.parametrize("name", ["tf1_text_embedding", "tf2_image_bn_reusable"])
def test_damaged_variables_index(shared_fixtures, tmp_path, name, damage,
                                 match):
  path = _copy(shared_fixtures, name, tmp_path)
  _rewrite(path, INDEX, damage)
  with pytest.raises(errors.ModelFormatError, match=match) as e:
    _check(path)
  assert e.value.file == INDEX


def test_garbled_fingerprint(shared_fixtures, tmp_path):
  path = _copy(shared_fixtures, "tf2_text_vocab_asset", tmp_path)
  _rewrite(path, "fingerprint.pb", lambda d: b"\xff" + d)
  with pytest.raises(errors.ModelFormatError, match="is corrupt") as e:
    _check(path)
  assert e.value.file == "fingerprint.pb"


def test_missing_variables_index(shared_fixtures, tmp_path):
  path = _copy(shared_fixtures, "tf2_signatures_only", tmp_path)
  os.remove(os.path.join(path, INDEX))
  with pytest.raises(errors.ModelFormatError, match="is missing") as e:
    _check(path)
  assert e.value.file == INDEX


@pytest.mark.parametrize("name", ["half_plus_two_v1", "tf2_text_vocab_asset"])
def test_truncated_variable_data(shared_fixtures, tmp_path, name):
  path = _copy(shared_fixtures, name, tmp_path)
  _rewrite(path, DATA, lambda d: d[:-3])
  with pytest.raises(errors.ModelFormatError, match="is truncated") as e:
    _check(path)
  assert e.value.file == DATA
  assert "variables.index places data up to byte" in str(e.value)


def test_missing_variable_data(shared_fixtures, tmp_path):
  path = _copy(shared_fixtures, "tf1_image_with_attachments", tmp_path)
  os.remove(os.path.join(path, DATA))
  with pytest.raises(errors.ModelFormatError, match="is missing") as e:
    _check(path)
  assert e.value.file == DATA


def test_unreadable_variable_data(shared_fixtures, tmp_path):
  path = _copy(shared_fixtures, "tf1_image_with_attachments", tmp_path)
  os.remove(os.path.join(path, DATA))
  os.mkdir(os.path.join(path, DATA))  # Unreadable as a file, even for root.
  with pytest.raises(errors.ModelFormatError, match="cannot be read") as e:
    _check(path)
  assert e.value.file == DATA


@pytest.mark.parametrize("name", ["tf1_image_feature_vector",
                                  "tf2_image_bn_reusable"])
def test_garbled_variable_data(shared_fixtures, tmp_path, name):
  path = _copy(shared_fixtures, name, tmp_path)
  _rewrite(path, DATA, _garble)
  with pytest.raises(errors.ModelFormatError,
                     match="does not match its checksum") as e:
    _check(path)
  assert e.value.file == DATA
  # Checksums are skipped above the size bound (loading would catch it).
  info = inspect_lib.inspect_folder(path)
  integrity.check_folder(info, verify_max_bytes=0)


@pytest.mark.parametrize("name,asset", [("tf1_text_embedding", "tokens.txt"),
                                        ("tf2_text_vocab_asset", "vocab.txt")])
def test_missing_asset(shared_fixtures, tmp_path, name, asset):
  path = _copy(shared_fixtures, name, tmp_path)
  os.remove(os.path.join(path, "assets", asset))
  with pytest.raises(errors.ModelFormatError, match="is missing") as e:
    _check(path)
  assert e.value.file == "assets/" + asset
  shutil.rmtree(os.path.join(path, "assets"))
  with pytest.raises(errors.ModelFormatError, match="is missing"):
    _check(path)


def test_asset_name_leaving_the_folder(shared_fixtures, tmp_path):
  path = _copy(shared_fixtures, "tf2_text_vocab_asset", tmp_path)
  proto = inspect_lib.read_saved_model(path)
  from tensorflow.core.protobuf import saved_model_pb2
  hostile = saved_model_pb2.SavedModel()
  hostile.CopyFrom(proto)
  hostile.meta_graphs[0].asset_file_def[0].filename = "../../etc/passwd"
  with open(os.path.join(path, "saved_model.pb"), "wb") as f:
    f.write(hostile.SerializeToString())
  os.remove(os.path.join(path, "fingerprint.pb"))  # A crafted model has none.
  with pytest.raises(errors.ModelFormatError, match="unsafe name") as e:
    _check(path)
  assert "'../../etc/passwd'" in str(e.value)


def test_dangling_object_references_are_tolerated(shared_fixtures, tmp_path):
  path = _copy(shared_fixtures, "tf2_image_bn_reusable", tmp_path)
  from tensorflow.core.protobuf import saved_model_pb2
  proto = saved_model_pb2.SavedModel()
  proto.CopyFrom(inspect_lib.read_saved_model(path))
  graph = proto.meta_graphs[0].object_graph_def
  graph.nodes[0].children[0].node_id = 10**6  # A dangling object reference.
  del graph.nodes[1:]
  with open(os.path.join(path, "saved_model.pb"), "wb") as f:
    f.write(proto.SerializeToString())
  with pytest.raises(errors.ModelFormatError, match="differs from the one "
                     "recorded in fingerprint.pb"):
    _check(path)
  os.remove(os.path.join(path, "fingerprint.pb"))
  info = _check(path)  # Unknown references are skipped, not fatal.
  assert info.variables == ()


# -- TensorFlow's own checksum verification, and what the pre-check adds ------

def _flip(path, offset):
  full = os.path.join(path, DATA)
  with open(full, "r+b") as f:
    f.seek(offset)
    byte = f.read(1)
    f.seek(offset)
    f.write(bytes([byte[0] ^ 0x01]))


def _raw_variable(path):
  """The index entry of a float variable (not the string object graph)."""
  index = inspect_lib.read_bundle_index(path)
  return next(e for e in index.entries
              if e.key.endswith("VARIABLE_VALUE") and e.dtype == 1)


@pytest.mark.parametrize("how", ["parallel", "tensorflow", "keras_layer"])
def test_restore_checksum_failure_names_the_file(shared_fixtures, tmp_path,
                                                 monkeypatch, how):
  # One flipped bit in a variable the pre-check does not look at (bound 0):
  # TensorFlow's restore raises DataLossError, and the user sees the same
  # ModelFormatError the pre-check gives, naming the file and variable.
  import hub_adapter  # pylint: disable=g-import-not-at-top
  path = _copy(shared_fixtures, "tf2_image_bn_reusable", tmp_path)
  entry = _raw_variable(path)
  _flip(path, entry.offset + entry.size // 2)
  monkeypatch.setenv(integrity.VERIFY_MAX_BYTES_ENV, "0")
  with pytest.raises(errors.ModelFormatError) as e:
    if how == "keras_layer":
      hub_adapter.KerasLayer(path)
    else:
      hub_adapter.load(path, restore=how)
  message = str(e.value)
  assert e.value.file == DATA
  assert message.startswith(f"Variable data file {DATA} of model "
                            f"{path!r} is corrupt.")
  assert f"Variable {entry.key!r} does not match its checksum" in message
  assert "DataLossError" in message and "Checksum does not match" in message
  assert "{{" not in message and "[Op:" not in message
  # With the pre-check on, the load stops before TensorFlow reads anything.
  monkeypatch.delenv(integrity.VERIFY_MAX_BYTES_ENV)
  with pytest.raises(errors.ModelFormatError,
                     match=f"Variable {entry.key!r} does not match") as e:
    hub_adapter.load(path)
  assert "CRC32C of its" in str(e.value) and "DataLossError" not in str(
      e.value)


def test_restore_error_ignores_other_failures(shared_fixtures):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = shared_fixtures.path("tf2_image_bn_reusable")
  assert integrity.restore_error(ValueError("no"), path) is None
  assert integrity.restore_error(
      tf.errors.NotFoundError(None, None, "Op type not registered"),
      path) is None
  error = integrity.restore_error(
      tf.errors.DataLossError(None, None, "Checksum does not match"), path)
  assert isinstance(error, errors.ModelFormatError) and error.file == DATA
  # Nothing is damaged on disk: the message says what TensorFlow found.
  assert "TensorFlow's restore read bytes" in str(error)


def _string_model(folder):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  module = tf.Module()
  module.words = tf.Variable(["", "a", "h\u00e9llo", "x" * 300] * 20)
  module.grid = tf.Variable([["p", "q"], ["", "rr"]])
  module.scalar = tf.Variable("only")
  module.numbers = tf.Variable(tf.range(64, dtype=tf.float32))
  tf.saved_model.save(module, folder)
  return folder


def test_string_variables_are_pre_checked(tmp_path):
  path = _string_model(str(tmp_path / "strings"))
  _check(path)  # TensorFlow's string layout checks out, whatever the shape.
  index = inspect_lib.read_bundle_index(path)
  words = next(e for e in index.entries if e.key.startswith("words/"))
  for offset in (words.offset + words.size - 5,  # In the string bytes.
                 words.offset + 1):  # In the lengths.
    broken = str(tmp_path / f"broken_{offset}")
    shutil.copytree(path, broken)
    _flip(broken, offset)
    with pytest.raises(errors.ModelFormatError,
                       match=f"Variable {words.key!r} does not match its "
                       "checksum") as e:
      _check(broken)
    assert e.value.file == DATA


def test_skipped_pre_check_is_logged(shared_fixtures, caplog):
  import logging  # pylint: disable=g-import-not-at-top
  info = inspect_lib.inspect_folder(shared_fixtures.path(
      "tf2_image_bn_reusable"))
  with caplog.at_level(logging.INFO, logger="absl"):
    integrity.check_folder(info, "h", verify_max_bytes=1)
  assert any("not pre-verifying" in r.getMessage() and
             "TensorFlow's restore verifies them" in r.getMessage()
             for r in caplog.records if r.name == "absl")
