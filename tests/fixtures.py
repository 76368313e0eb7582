"""The project's test models: manifest entries, golden arrays, cases.

The models are built by ``tests/models/build.py`` (tox runs it before the
tests) into ``$HUB_ADAPTER_TEST_MODELS`` (tox sets it to
``.tox/test-models``), one part per reference stack: ``tf1_hub/`` (made with
tensorflow_hub 0.15 on TF 2.15) and ``tf2_saved_model/`` (TF 2.21). Each part
has a ``manifest.json``; :class:`ModelSet` merges them.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any, Dict, List

import numpy as np


def _to_tf_value(array: np.ndarray) -> np.ndarray:
  """Golden strings are numpy unicode; TF wants UTF-8 bytes."""
  if array.dtype.kind == "U":
    return np.char.encode(array, "utf-8").astype(object)
  return array


@dataclasses.dataclass
class Case:
  """One golden case of a fixture."""
  fixture: Dict[str, Any]
  spec: Dict[str, Any]
  golden: Any

  @property
  def id(self) -> str:
    return self.spec["id"]

  def inputs(self) -> Dict[str, np.ndarray]:
    return {k: _to_tf_value(self.golden[v["key"]])
            for k, v in self.spec.get("inputs", {}).items()}

  def module_inputs(self) -> Dict[str, Any]:
    """The inputs as a TF1 signature takes them: the components of a sparse
    or ragged input (stored under ``hub.load``'s argument names, see the
    case's ``composite_inputs``) assembled into one ``tf.SparseTensor`` or
    ``tf.RaggedTensor``."""
    inputs = self.inputs()
    composites = self.spec.get("composite_inputs", {})
    if not composites:
      return inputs
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    for name, composite in composites.items():
      parts = {role: inputs.pop(key)
               for role, key in composite["components"].items()}
      if composite["type"] == "sparse":
        inputs[name] = tf.SparseTensor(**parts)
      else:
        inputs[name] = tf.RaggedTensor.from_row_splits(
            parts["values"], parts["row_splits"])
    return inputs

  def outputs(self) -> Dict[str, np.ndarray]:
    return {k: _to_tf_value(self.golden[v["key"]])
            for k, v in self.spec.get("outputs", {}).items()}

  def state_after(self) -> Dict[str, np.ndarray]:
    return {k: self.golden[v["key"]]
            for k, v in self.spec.get("state_after", {}).items()}

  def call_input(self) -> Any:
    """What a ``call`` case passes positionally: the one array stored as
    ``inputs``, or the dict of named inputs (e.g. a BERT encoder's)."""
    inputs = self.inputs()
    return inputs["inputs"] if set(inputs) == {"inputs"} else inputs

  def assert_call_outputs(self, actual: Any) -> None:
    """Compares a call's result: a dict by its keys, else as ``output``."""
    self.assert_outputs(actual if isinstance(actual, dict)
                        else {"output": actual})

  def assert_outputs(self, actual: Dict[str, Any]) -> None:
    """Compares actual outputs with the goldens as the case's check says."""
    tol = self.fixture.get("tolerance", {"rtol": 1e-5, "atol": 1e-5})
    expected = self.outputs()
    assert set(actual) >= set(expected), (sorted(actual), sorted(expected))
    for key, want in expected.items():
      got = np.asarray(actual[key])
      assert got.shape == want.shape, (key, got.shape, want.shape)
      if self.spec.get("check", "allclose") == "allclose":
        if want.dtype == object:
          assert got.tolist() == want.tolist(), key
        else:
          np.testing.assert_allclose(got, want, err_msg=key, **tol)


PARTS = ("tf1_hub", "tf2_saved_model")
BUILD_HINT = ("Build them with `python3 -m tox -e tf215-models,tf221-models` "
              "(plain `python3 -m tox` does it before the tests), or run "
              "`python tests/models/build.py PART --out DIR` in the matching "
              "environment and set HUB_ADAPTER_TEST_MODELS=DIR.")


class ModelsMissingError(RuntimeError):
  """The test models have not been built."""


def models_root() -> str:
  """The folder holding the built parts."""
  return os.path.abspath(os.environ.get("HUB_ADAPTER_TEST_MODELS") or os.path.join(
      os.path.dirname(__file__), "..", ".tox", "test-models"))


def missing_parts(root: str | None = None) -> List[str]:
  """The parts whose manifest is absent under ``root``."""
  root = root or models_root()
  return [p for p in PARTS
          if not os.path.isfile(os.path.join(root, p, "manifest.json"))]


@dataclasses.dataclass
class ModelSet:
  """The built test models: every part's fixtures, by name."""
  root: str
  fixtures: Dict[str, Dict[str, Any]]

  @classmethod
  def locate(cls) -> "ModelSet":
    """Reads every part's manifest under :func:`models_root`.

    Raises:
      ModelsMissingError: a part has not been built.
    """
    root = models_root()
    missing = missing_parts(root)
    if missing:
      raise ModelsMissingError(
          f"The test models {', '.join(missing)} are not built in {root}. "
          + BUILD_HINT)
    fixtures = {}
    for part in PARTS:
      part_dir = os.path.join(root, part)
      with open(os.path.join(part_dir, "manifest.json")) as f:
        for entry in json.load(f)["fixtures"]:
          entry = dict(entry, part_dir=part_dir)
          fixtures[entry["name"]] = entry
    return cls(root, fixtures)

  def _file(self, name: str, key: str) -> str:
    entry = self.entry(name)
    return os.path.join(entry["part_dir"], entry[key])

  def names(self, format: str | None = None) -> List[str]:
    return sorted(n for n, f in self.fixtures.items()
                  if format is None or f["format"] == format)

  def entry(self, name: str) -> Dict[str, Any]:
    return self.fixtures[name]

  def path(self, name: str) -> str:
    return self._file(name, "path")

  def writable_copy(self, name: str, folder: str) -> str:
    """A copy of model ``name`` in ``folder``, every file writable, for
    tests that damage it."""
    dst = os.path.join(folder, name)
    shutil.copytree(self.path(name), dst)
    for root, dirs, files in os.walk(dst):
      for n in dirs + files:
        os.chmod(os.path.join(root, n), 0o755)
    os.chmod(dst, 0o755)
    return dst

  def archive(self, name: str) -> str:
    return self._file(name, "archive")

  def golden(self, name: str) -> Any:
    """The fixture's golden arrays (an ``np.load`` of its ``.npz``)."""
    return np.load(self._file(name, "golden"), allow_pickle=False)

  def cases(self, name: str, api: str | None = None) -> List[Case]:
    entry = self.entry(name)
    golden = self.golden(name)
    return [Case(entry, c, golden) for c in entry["cases"]
            if api is None or c["api"] == api]


SharedFixtures = ModelSet  # The name tests used before the models moved in.


def locate() -> ModelSet:
  return ModelSet.locate()
