"""The ``hub-adapter`` command line."""
import json
import os
import subprocess
import sys

import pytest

from hub_adapter import cli

CLI = os.path.join(os.path.dirname(sys.executable), "hub-adapter")


def test_parser_knows_the_commands():
  parser = cli.build_parser()
  assert parser.parse_args(["matrix"]).command == "matrix"
  assert parser.parse_args(["inspect", "x", "--json"]).json
  assert parser.parse_args(["fetch", "x"]).command == "fetch"
  with pytest.raises(SystemExit):
    parser.parse_args([])


def test_inspect_prints_signatures(shared_fixtures):
  path = shared_fixtures.path("tf1_image_feature_vector")
  proc = subprocess.run([CLI, "inspect", path], capture_output=True,
                        text=True, check=True)
  for word in ("tf1_hub", "image_feature_vector", "train", "pre_logits"):
    assert word in proc.stdout


def test_inspect_json_matches_the_manifest(shared_fixtures):
  name = "tf2_signatures_only"
  proc = subprocess.run([CLI, "inspect", "--json", shared_fixtures.path(name)],
                        capture_output=True, text=True, check=True)
  data = json.loads(proc.stdout)
  assert data["format"] == "tf2_saved_model"
  text = json.dumps(data)
  for signature in shared_fixtures.entry(name)["signatures"]:
    assert signature in text


_INSPECT_WITHOUT_TF = r"""
import runpy, sys
path = sys.argv[1]
sys.argv = ["hub-adapter", "inspect", path]
try:
  runpy.run_module("hub_adapter.cli", run_name="__main__")
except SystemExit as e:
  assert not e.code, e.code
from hub_adapter import inspection
inspection.inspect(path)
print("TF-IMPORTED" if "tensorflow" in sys.modules else "TF-FREE")
"""


@pytest.mark.parametrize("name", ["tf2_bert_preprocess",
                                  "tf1_image_feature_vector"])
def test_inspect_does_not_import_tensorflow(shared_fixtures, name):
  path = shared_fixtures.path(name)
  proc = subprocess.run([sys.executable, "-c", _INSPECT_WITHOUT_TF, path], capture_output=True, text=True, timeout=300,
                        check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip().splitlines()[-1] == "TF-FREE"


def test_errors_exit_2_with_a_typed_message(tmp_path):
  proc = subprocess.run([CLI, "inspect", str(tmp_path / "missing")],
                        capture_output=True, text=True)
  assert proc.returncode == 2
  assert "HandleError" in proc.stderr
  assert str(tmp_path / "missing") in proc.stderr
  assert "Traceback" not in proc.stderr


def test_version_prints_the_package_version():
  import hub_adapter  # pylint: disable=g-import-not-at-top
  proc = subprocess.run([CLI, "--version"], capture_output=True, text=True,
                        check=True)
  assert proc.stdout.strip() == f"hub-adapter {hub_adapter.__version__}"


def test_verbose_shows_absl_log_messages(shared_fixtures, tmp_path):
  env = dict(os.environ, TFHUB_CACHE_DIR=str(tmp_path / "cache"))
  archive = shared_fixtures.archive("half_plus_two_v1")
  first, quiet, hit = [
      subprocess.run([CLI, *flags, "fetch", "--quiet", archive], env=env,
                     capture_output=True, text=True, check=True)
      for flags in (["-v"], [], ["-vv"])]
  assert "hub_adapter: cached" in first.stderr  # INFO: the extraction.
  assert "cache hit" not in first.stderr
  assert "hub_adapter:" not in quiet.stderr  # Nothing without -v.
  assert "hub_adapter: cache hit" in hit.stderr  # DEBUG needs -vv.
  assert first.stdout == quiet.stdout == hit.stdout  # One cached folder.
