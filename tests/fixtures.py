"""Access to ../shared/fixtures: manifest entries, golden arrays, cases."""
from __future__ import annotations

import dataclasses
import json
import os
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

  def outputs(self) -> Dict[str, np.ndarray]:
    return {k: _to_tf_value(self.golden[v["key"]])
            for k, v in self.spec.get("outputs", {}).items()}

  def state_after(self) -> Dict[str, np.ndarray]:
    return {k: self.golden[v["key"]]
            for k, v in self.spec.get("state_after", {}).items()}

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


@dataclasses.dataclass
class SharedFixtures:
  """The fixtures folder and its manifest."""
  root: str
  manifest: Dict[str, Any]

  @classmethod
  def locate(cls) -> "SharedFixtures":
    root = os.environ.get("HUB_ADAPTER_FIXTURES") or os.path.join(
        os.path.dirname(__file__), "..", "..", "shared", "fixtures")
    root = os.path.abspath(root)
    with open(os.path.join(root, "manifest.json")) as f:
      return cls(root, json.load(f))

  def names(self, format: str | None = None) -> List[str]:
    return [f["name"] for f in self.manifest["fixtures"]
            if format is None or f["format"] == format]

  def entry(self, name: str) -> Dict[str, Any]:
    return {f["name"]: f for f in self.manifest["fixtures"]}[name]

  def path(self, name: str) -> str:
    return os.path.join(self.root, self.entry(name)["path"])

  def archive(self, name: str) -> str:
    return os.path.join(self.root, self.entry(name)["archive"])

  def cases(self, name: str, api: str | None = None) -> List[Case]:
    entry = self.entry(name)
    golden = np.load(os.path.join(self.root, entry["golden"]),
                     allow_pickle=False)
    return [Case(entry, c, golden) for c in entry["cases"]
            if api is None or c["api"] == api]


def locate() -> SharedFixtures:
  return SharedFixtures.locate()
