"""hub_adapter.tf1.hub_protos and hub_adapter.tf1.spec: reading modules.

Everything here reads protos only (no graph is built), so these tests run in
the TF2 session; the TF1 compat session repeats the spec checks that matter
there (marked ``tf1_compat``).
"""
from __future__ import annotations

import base64
import shutil

import pytest

import fixtures
from hub_adapter import errors
from hub_adapter.tf1 import hub_protos
from hub_adapter.tf1 import spec as spec_lib

SHARED = fixtures.locate()
TF1_FIXTURES = SHARED.names("tf1_hub")
ATTACH = "tf1_image_with_attachments"
IMAGE = "tf1_image_feature_vector"


# hub_protos -----------------------------------------------------------------
@pytest.mark.parametrize("name", TF1_FIXTURES)
def test_module_def_of_every_fixture(name):
  data = open(hub_protos.module_def_path(SHARED.path(name)), "rb").read()
  module_def = hub_protos.parse_module_def(data)
  assert module_def.format == hub_protos.FORMAT_V3
  assert list(module_def.required_features) == []
  assert hub_protos.serialize_module_def() == data


def test_module_def_wire_format():
  # field 1 (format) varint 3; field 2 (required_features) "ab".
  data = hub_protos.serialize_module_def(["ab"])
  assert data == b"\x08\x03\x12\x02ab"
  assert hub_protos.ModuleDef.DESCRIPTOR.full_name == "tensorflow_hub.ModuleDef"


def test_unknown_format_version():
  data = hub_protos.ModuleDef(format=4).SerializeToString()
  with pytest.raises(errors.ModelFormatError) as info:
    hub_protos.parse_module_def(data, source="x/tfhub_module.pb")
  assert "format 4" in str(info.value) and "3" in str(info.value)
  assert info.value.expected == 3 and info.value.received == 4


def test_unknown_required_features():
  data = hub_protos.serialize_module_def(["future-feature"])
  with pytest.raises(errors.ModelFormatError, match="'future-feature'"):
    hub_protos.parse_module_def(data)


def test_corrupt_module_def():
  with pytest.raises(errors.ModelFormatError, match="Cannot parse"):
    hub_protos.parse_module_def(b"\xff\xff\xff")


def test_missing_module_def(tmp_path):
  with pytest.raises(errors.ModelFormatError, match="tfhub_module.pb"):
    hub_protos.read_module_def(str(tmp_path))


def test_attachments_round_trip():
  encoded = hub_protos.encode_attachments({"a": b"1", "b": b"\x00\x01"})
  assert hub_protos.decode_attachments(encoded) == {"a": b"1", "b": b"\x00\x01"}
  # A later entry for the same key wins.
  encoded += hub_protos.encode_attachments({"a": b"2"})
  assert hub_protos.decode_attachments(encoded)["a"] == b"2"


def test_image_module_info_matches_manifest():
  messages = SHARED.entry(ATTACH)["attached_messages"][0]["messages"]
  data = base64.b64decode(messages["image_module_info"]["serialized_base64"])
  info = hub_protos.parse_message(hub_protos.ImageModuleInfo, data)
  assert hub_protos.image_size(info) == (6, 6)
  assert info.SerializeToString() == data
  assert hub_protos.image_size(hub_protos.ImageModuleInfo()) is None


def test_protos_module_does_not_import_tensorflow():
  import subprocess
  import sys
  code = ("import sys; import hub_adapter.tf1.hub_protos; "
          "sys.exit(1 if 'tensorflow' in sys.modules else 0)")
  assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# Specs ----------------------------------------------------------------------
@pytest.mark.parametrize("name", TF1_FIXTURES)
def test_spec_matches_manifest(name):
  entry = SHARED.entry(name)
  spec = spec_lib.load_module_spec(SHARED.path(name))
  assert sorted(sorted(t) for t in spec.get_tags()) == sorted(
      sorted(t) for t in entry["tag_sets"])
  for tags in spec.get_tags():
    assert sorted(spec.get_signature_names(tags)) == sorted(
        entry["signatures"])
    for signature, want in entry["signatures"].items():
      for kind, infos in (
          ("inputs", spec.get_input_info_dict(signature, tags)),
          ("outputs", spec.get_output_info_dict(signature, tags))):
        assert sorted(infos) == sorted(want[kind])
        for key, info in infos.items():
          expected = want[kind][key]
          assert info.dtype.name == expected["dtype"]
          shape = info.get_shape()
          assert (None if shape.rank is None else shape.as_list()) == (
              expected["shape"])
          assert info.is_composite == expected["is_composite"]
          assert info.is_sparse == expected.get("is_sparse", False)
  assert spec.module_dir == SHARED.path(name)
  assert spec.checkpoint_prefix.endswith("variables/variables")


@pytest.mark.parametrize("name", TF1_FIXTURES)
def test_attached_messages_match_manifest(name):
  spec = spec_lib.load_module_spec(SHARED.path(name))
  records = SHARED.entry(name).get("attached_messages", [])
  for record in records:
    tags = set(record["tags"])
    for key, message in record["messages"].items():
      data = base64.b64decode(message["serialized_base64"])
      assert spec._get_attached_bytes(key, tags) == data  # pylint: disable=protected-access
  if not records:
    assert spec.get_attached_message(
        "image_module_info", hub_protos.ImageModuleInfo) is None


def test_attached_example_parses_with_tf_proto():
  import tensorflow as tf
  spec = spec_lib.load_module_spec(SHARED.path(ATTACH))
  labels = spec.get_attached_message("label_info", tf.train.Example)
  names = labels.features.feature["class_names"].bytes_list.value
  assert list(names) == [b"cat", b"dog", b"bird", b"fish"]


def test_required_attachment_missing():
  spec = spec_lib.load_module_spec(SHARED.path(ATTACH))
  assert spec.get_attached_message("nope", hub_protos.ImageModuleInfo) is None
  with pytest.raises(errors.AttachmentNotFoundError) as info:
    spec.get_attached_message("nope", hub_protos.ImageModuleInfo,
                              required=True)
  assert isinstance(info.value, KeyError)
  assert "'image_module_info'" in str(info.value)
  assert "'label_info'" in str(info.value)


def test_missing_tags_and_signature():
  spec = spec_lib.load_module_spec(SHARED.path(IMAGE))
  with pytest.raises(errors.TagSetError) as info:
    spec.get_signature_names(tags={"serve"})
  assert isinstance(info.value, KeyError) and isinstance(info.value,
                                                         ValueError)
  assert "{'serve'}" in str(info.value) and "{'train'}" in str(info.value)
  with pytest.raises(errors.SignatureError) as info:
    spec.get_input_info_dict("nope")
  assert isinstance(info.value, ValueError)
  assert "'image_classification'" in str(info.value)
  assert info.value.available == sorted(SHARED.entry(IMAGE)["signatures"])


def test_asset_paths_stay_inside_the_module(tmp_path):
  spec = spec_lib.load_module_spec(SHARED.path("tf1_text_embedding"))
  node_paths = spec.asset_node_paths()
  assert list(node_paths.values()) == [
      f"{SHARED.path('tf1_text_embedding')}/assets/tokens.txt"]
  with pytest.raises(errors.ModelFormatError, match="outside"):
    spec.asset_path("../../etc/passwd")
  created = spec_lib.NativeModuleSpec(
      spec.saved_model, asset_sources={"tokens.txt": str(tmp_path / "v.txt")})
  assert created.asset_path("tokens.txt") == str(tmp_path / "v.txt")
  assert created.asset_sources == {"tokens.txt": str(tmp_path / "v.txt")}
  with pytest.raises(errors.ModelFormatError, match="no source"):
    spec_lib.NativeModuleSpec(spec.saved_model).asset_path("tokens.txt")


def test_load_module_spec_from_archive(tmp_path, monkeypatch):
  monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
  spec = spec_lib.load_module_spec(SHARED.archive("half_plus_two_v1"))
  assert spec.module_dir.startswith(str(tmp_path / "cache"))
  assert spec.get_signature_names() == ["default"]


def test_spec_of_a_tf2_saved_model_is_refused():
  with pytest.raises(errors.ModelFormatError, match="tfhub_module.pb"):
    spec_lib.load_module_spec(SHARED.path("tf2_image_bn_reusable"))


def test_as_module_spec_type_error():
  with pytest.raises(errors.InputError, match="ModuleSpec"):
    spec_lib.as_module_spec(42)


def test_export_needs_checkpoint_path():
  spec = spec_lib.load_module_spec(SHARED.path("half_plus_two_v1"))
  with pytest.raises(ValueError, match="checkpoint_path"):
    spec.export("/nonexistent/never/written")
  with pytest.raises(ValueError, match="by name"):
    spec.export("/nonexistent/never/written", "positional")


def test_spec_reads_a_renamed_copy(tmp_path):
  shutil.copytree(SHARED.path(ATTACH), tmp_path / "a")
  (tmp_path / "a").rename(tmp_path / "b")
  spec = spec_lib.load_module_spec(str(tmp_path / "b"))
  assert spec.module_dir == str(tmp_path / "b")
  assert spec.checkpoint_prefix == str(tmp_path / "b" / "variables" /
                                       "variables")


@pytest.mark.tf1_compat
@pytest.mark.parametrize("name", TF1_FIXTURES)
def test_spec_in_graph_mode(name):
  spec = spec_lib.load_module_spec(SHARED.path(name))
  assert sorted(spec.get_signature_names(spec.get_tags()[0])) == sorted(
      SHARED.entry(name)["signatures"])
