"""Errors are typed, catchable as built-ins, and say what/why/fix."""
import pytest

from hub_adapter import errors


@pytest.mark.parametrize("cls,builtin", [
    (errors.HandleError, OSError),
    (errors.ArchiveError, OSError),
    (errors.CacheError, OSError),
    (errors.ModelFormatError, ValueError),
    (errors.SignatureError, ValueError),
    (errors.InputError, ValueError),
    (errors.BackendUnavailableError, ImportError),
    (errors.UnsafeModelError, PermissionError),
])
def test_each_error_is_also_the_builtin_callers_catch(cls, builtin):
  error = cls("message", handle="h")
  assert isinstance(error, errors.HubAdapterError)
  assert isinstance(error, builtin)
  assert str(error) == "message"
  assert error.handle == "h"


def test_compose_has_what_why_fix_and_context():
  text = errors.compose("Cannot load 'x'.", "It is broken.", "Use y.",
                        {"handle": "x", "folder": None, "format": "tf1_hub"})
  assert text.splitlines() == [
      "Cannot load 'x'.", "Why: It is broken.", "Fix: Use y.",
      "  handle: x", "  format: tf1_hub"]


def test_choices_are_sorted_and_quoted():
  assert errors.choices(["b", "a"]) == "'a', 'b'"
  assert errors.choices([]) == "(none)"
