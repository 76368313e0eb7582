"""tools/run_hub_suites.py: the shim package and the bookkeeping around it.

The runner itself needs a checkout of tensorflow/hub (see
docs/compatibility.md); these tests use a stand-in checkout made here.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

import hub_adapter

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools",
                    "run_hub_suites.py")


@pytest.fixture(scope="module")
def runner():
  spec = importlib.util.spec_from_file_location("run_hub_suites", TOOL)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture
def checkout(tmp_path):
  """A stand-in for tensorflow/hub's tensorflow_hub/ folder."""
  folder = tmp_path / "hub" / "tensorflow_hub"
  folder.mkdir(parents=True)
  (folder / "version.py").write_text('__version__ = "0.16.1"\n')
  (folder / "resolver.py").write_text("PRIVATE = 'from the checkout'\n")
  (folder / "module_v2.py").write_text("raise ImportError('not the shim')\n")
  return str(folder)


def test_the_shim_takes_public_names_from_hub_adapter(runner, checkout,
                                                      tmp_path):
  shim = runner.write_shim(str(tmp_path / "work"), checkout, "0.16.1")
  code = ("import hub_adapter, tensorflow_hub as hub; "
          "from tensorflow_hub import module_v2, keras_layer, resolver; "
          "print(hub.load is hub_adapter.load, "
          "module_v2.load is hub_adapter.load, "
          "hub.create_module_spec is hub_adapter.create_module_spec, "
          "resolver.PRIVATE, hub.__version__)")
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [shim, os.path.dirname(os.path.dirname(hub_adapter.__file__))]))
  out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                       capture_output=True, text=True).stdout.split()
  assert out == ["True", "True", "True", "from", "the", "checkout",
                 "0.16.1"]


def test_version_and_suites(runner, checkout):
  assert runner.hub_version(checkout) == "0.16.1"
  assert runner.pick_suites("0.16.1", "2.21.0", None) == [
      "keras_layer_test", "module_v2_test", "e2e_test", "resolver_test",
      "compressed_module_resolver_test"]
  # 0.15's keras_layer_test imports tf.estimator: TF 2.15 only.
  assert runner.pick_suites("0.15.0", "2.21.0", None) == [
      "e2e_test", "module_v2_test"]
  assert runner.pick_suites("0.15.0", "2.15.1", None) == [
      "e2e_test", "module_v2_test", "keras_layer_test"]
  assert runner.pick_suites("0.15.0", "2.21.0", ["e2e_test"]) == ["e2e_test"]
  with pytest.raises(SystemExit):
    runner.pick_suites("0.12.0", "2.21.0", None)


def test_junit_counts_leave_out_tf_test_session(runner, tmp_path):
  report = tmp_path / "junit.xml"
  report.write_text(
      '<testsuites><testsuite>'
      '<testcase classname="a.T" name="test_ok"/>'
      '<testcase classname="a.T" name="test_bad"><failure/></testcase>'
      '<testcase classname="a.T" name="test_err"><error/></testcase>'
      '<testcase classname="a.T" name="test_session"><skipped/></testcase>'
      '<testcase classname="a.T" name="test_skip"><skipped/></testcase>'
      '</testsuite></testsuites>')
  passed, failed, skipped = runner.read_junit(str(report))
  assert passed == 1
  assert failed == ["a.T.test_bad", "a.T.test_err"]
  assert skipped == ["a.T.test_skip"]


def test_a_git_directory_needs_a_ref(runner, tmp_path):
  git_dir = tmp_path / "hub.git"
  git_dir.mkdir()
  (git_dir / "HEAD").write_text("ref: refs/heads/master\n")
  with pytest.raises(SystemExit, match="--ref"):
    runner.export_checkout(str(git_dir), None, str(tmp_path / "work"))
