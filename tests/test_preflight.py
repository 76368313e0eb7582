"""The one preflight (hub_adapter.preflight.open_model): every entry point
checks the folder's files, and each file of a model is parsed once."""
import os

import pytest

import hub_adapter
from hub_adapter import errors
from hub_adapter import reader
from hub_adapter import preflight
from hub_adapter import proto_readers
from hub_adapter.support import Format
from hub_adapter.tf1 import hub_protos

DATA = os.path.join("variables", "variables.data-00000-of-00001")
TF2 = "tf2_text_vocab_asset"
TF1 = "half_plus_two_v1"


def _copy(shared_fixtures, name, tmp_path):
  return shared_fixtures.writable_copy(name, str(tmp_path))


def _truncated(shared_fixtures, name, tmp_path):
  path = _copy(shared_fixtures, name, tmp_path)
  full = os.path.join(path, DATA)
  with open(full, "rb") as f:
    data = f.read()
  with open(full, "wb") as f:
    f.write(data[:-3])
  return path


def test_open_model_returns_the_folder_and_its_protos(shared_fixtures):
  path, info = preflight.open_model(shared_fixtures.path(TF1))
  assert os.path.isdir(path) and info.format is Format.TF1_HUB
  assert info.saved_model is not None and info.saved_model.meta_graphs
  assert info.bundle_index is not None


def _load(path):
  hub_adapter.load(path)


def _keras(path):
  hub_adapter.KerasLayer(path)


def _inspect(path):
  hub_adapter.inspect(path)


def _convert(path):
  hub_adapter.convert(path, os.path.join(os.path.dirname(path), "out"))


def _load_module_spec(path):
  hub_adapter.load_module_spec(path)


@pytest.mark.parametrize("name,enter", [
    (TF2, _load), (TF2, _keras), (TF2, _inspect), (TF1, _convert),
    (TF1, _load_module_spec), (TF1, _inspect)])
def test_every_entry_point_checks_the_files(shared_fixtures, tmp_path, name,
                                            enter):
  path = _truncated(shared_fixtures, name, tmp_path)
  with pytest.raises(errors.ModelFormatError, match="is truncated") as e:
    enter(path)
  assert e.value.file == DATA


@pytest.fixture
def parses(monkeypatch):
  """Counts the parses of saved_model.pb, tfhub_module.pb, variables.index."""
  counts = {"saved_model": 0, "module_def": 0, "index": 0}
  real_saved_model = reader._parse_saved_model  # pylint: disable=protected-access
  real_module_def = hub_protos.parse_module_def
  real_index = proto_readers.parse_bundle_index

  def saved_model(*args, **kwargs):
    counts["saved_model"] += 1
    return real_saved_model(*args, **kwargs)

  def module_def(*args, **kwargs):
    counts["module_def"] += 1
    return real_module_def(*args, **kwargs)

  def index(*args, **kwargs):
    counts["index"] += 1
    return real_index(*args, **kwargs)

  monkeypatch.setattr(reader, "_parse_saved_model", saved_model)
  monkeypatch.setattr(hub_protos, "parse_module_def", module_def)
  monkeypatch.setattr(proto_readers, "parse_bundle_index", index)
  return counts


def test_a_tf2_load_parses_each_file_once(shared_fixtures, tmp_path, parses):
  path = _copy(shared_fixtures, TF2, tmp_path)
  hub_adapter.load(path)
  assert parses == {"saved_model": 1, "module_def": 0, "index": 1}


def test_a_tf1_module_spec_parses_each_file_once(shared_fixtures, tmp_path,
                                                 parses):
  path = _copy(shared_fixtures, TF1, tmp_path)
  spec = hub_adapter.load_module_spec(path)
  assert spec.get_tags()
  assert parses == {"saved_model": 1, "module_def": 1, "index": 1}
