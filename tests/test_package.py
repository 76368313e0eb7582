"""Packaging promises: no import-time TensorFlow, tensorflow_hub importable."""
import subprocess
import sys

import hub_adapter


def _run(code: str) -> str:
  return subprocess.run([sys.executable, "-c", code], check=True,
                        capture_output=True, text=True).stdout.strip()


def test_import_does_not_import_tensorflow_or_keras():
  out = _run("import sys, hub_adapter; print(sorted(m for m in "
             "('tensorflow', 'keras', 'tf_keras', 'tensorflow_hub') "
             "if m in sys.modules))")
  assert out == "[]"


def test_tensorflow_hub_imports_even_without_pkg_resources():
  # The test environments ship setuptools >= 81, which has no pkg_resources.
  out = _run(
      "import importlib.util as u; print(u.find_spec('pkg_resources') is None)")
  code = ("from hub_adapter._hub_import import import_tensorflow_hub as i; "
          "import sys; hub = i(); print(hub.__version__, "
          "'pkg_resources' in sys.modules)")
  version, leaked = _run(code).split()
  assert version.startswith("0.1")
  if out == "True":
    assert leaked == "False"


def test_public_names_exist():
  for name in hub_adapter.__all__:
    assert getattr(hub_adapter, name) is not None, name
  assert hub_adapter.__version__


def test_public_functions_stay_functions_after_their_modules_load(
    shared_fixtures):
  # The modules behind them are named differently (inspection, handles,
  # conversion), so importing those modules cannot replace the functions.
  out = _run(
      "import hub_adapter, sys; "
      f"hub_adapter.load({shared_fixtures.path('half_plus_two_v1')!r}); "
      "import hub_adapter.conversion; "
      "print([callable(getattr(hub_adapter, n)) and "
      "type(getattr(hub_adapter, n)).__name__ == 'function' "
      "for n in ('inspect', 'resolve', 'convert', 'load', 'save')])")
  assert out.splitlines()[-1] == "[True, True, True, True, True]"
