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


def _third_party_imports() -> set:
  """Top-level modules imported anywhere in hub_adapter, minus the stdlib."""
  import ast  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(hub_adapter.__file__)
  found = set()
  for folder, _, names in os.walk(root):
    for name in names:
      if not name.endswith(".py"):
        continue
      with open(os.path.join(folder, name)) as f:
        tree = ast.parse(f.read())
      for node in ast.walk(tree):
        if isinstance(node, ast.Import):
          found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
          found.add(node.module.split(".")[0])
  # pkg_resources is only probed for (and stood in for) by _hub_import.
  return found - set(sys.stdlib_module_names) - {
      "hub_adapter", "__future__", "pkg_resources"}


def test_declared_dependencies_cover_every_import():
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  from packaging.requirements import Requirement  # pylint: disable=g-import-not-at-top
  # Optional back-ends (jax, tensorflow-text) are declared as extras.
  declared = {Requirement(r).name.lower().replace("_", "-")
              for r in metadata.requires("hub-adapter")}
  providers = metadata.packages_distributions()
  for module in sorted(_third_party_imports()):
    # A module of an extra that is not installed here (jax on TF 2.15) has
    # no provider to look up; its distribution has the module's name.
    dists = {d.lower().replace("_", "-")
             for d in providers.get(module, [module])}
    assert dists & declared, (module, sorted(dists), sorted(declared))


def test_metadata_matches_the_tested_python_and_ships_py_typed():
  import importlib.resources  # pylint: disable=g-import-not-at-top
  from importlib import metadata  # pylint: disable=g-import-not-at-top
  from packaging.specifiers import SpecifierSet  # pylint: disable=g-import-not-at-top
  meta = metadata.metadata("hub-adapter")
  running = "%d.%d.%d" % sys.version_info[:3]
  assert running in SpecifierSet(meta["Requires-Python"])
  assert "3.12.0" not in SpecifierSet(meta["Requires-Python"])
  assert ("Programming Language :: Python :: %d.%d" % sys.version_info[:2]
          in meta.get_all("Classifier"))
  assert meta["Version"] == hub_adapter.__version__
  assert importlib.resources.files("hub_adapter").joinpath("py.typed").is_file()
