"""The support table is complete, matches the official table, and drives
errors."""
import pytest

from hub_adapter import errors
from hub_adapter import support
from hub_adapter.support import Format, Mode, Operation

from official_table import OFFICIAL  # pylint: disable=wrong-import-order


def test_table_has_all_twelve_cells_as_official():
  assert len(support.TABLE) == 12
  got = {(f.value, o.value, m.value): cell.supported
         for (f, o, m), cell in support.TABLE.items()}
  assert got == OFFICIAL


def test_table_is_read_only():
  with pytest.raises(TypeError):
    support.TABLE[(Format.TF1_HUB, Operation.LOAD, Mode.TF2)] = None


@pytest.mark.parametrize("key", [k for k, v in OFFICIAL.items() if v])
def test_supported_cells_name_an_importable_backend(key):
  cell = support.lookup(*key)
  assert isinstance(cell, support.Supported)
  assert callable(support.backend(cell))


@pytest.mark.parametrize("key", [k for k, v in OFFICIAL.items() if not v])
def test_unsupported_cells_raise_with_reason_and_remedy(key):
  cell = support.lookup(*key)
  with pytest.raises(errors.UnsupportedOperationError) as info:
    support.require(*key, handle="/models/x")
  error = info.value
  assert isinstance(error, NotImplementedError)
  assert error.reason == cell.reason and error.remedy == cell.remedy
  message = str(error)
  assert "/models/x" in message and cell.remedy in message
  assert key[0] in message and key[2] in message
  assert error.format is Format(key[0]) and error.mode is Mode(key[2])


def test_tf1_fine_tune_in_tf2_remedy_is_actionable():
  cell = support.lookup("tf1_hub", "fine_tune", "tf2")
  assert "disable_v2_behavior" in cell.remedy
  assert "trainable=True" in cell.remedy
  assert "TF2 SavedModel" in cell.remedy
  assert "hub-adapter convert" in cell.remedy


def test_unknown_key_lists_choices():
  with pytest.raises(ValueError, match="Formats: .*tf1_hub"):
    support.lookup("onnx", "load", "tf2")


def test_missing_backend_is_typed():
  cell = support.Supported("hub_adapter.no_such_module:load", "nothing")
  with pytest.raises(errors.BackendUnavailableError, match="no_such_module"):
    support.backend(cell)
