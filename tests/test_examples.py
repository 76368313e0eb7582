"""The examples in examples/ run as documented and print what they claim."""
import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _run(script, *args):
  proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, script),
                         *args], capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def _losses(out):
  first, last = re.search(r"loss ([\d.]+) -> ([\d.]+)", out).groups()
  return float(first), float(last)


def test_finetune_keras(shared_fixtures):
  out = _run("finetune_keras.py", shared_fixtures.path("tf2_image_bn_reusable"))
  first, last = _losses(out)
  assert last < first
  assert "regularization losses in model.losses: 2" in out


def test_finetune_tf1_graph(shared_fixtures):
  out = _run("finetune_tf1_graph.py",
             shared_fixtures.path("tf1_image_feature_vector"))
  first, last = _losses(out)
  assert last < first
  assert "update ops: 2, regularization losses: 2" in out


def test_create_tf1_module(tmp_path):
  out = _run("create_tf1_module.py", str(tmp_path / "module"))
  assert "signatures: ['default']" in out
  assert os.path.exists(tmp_path / "module" / "tfhub_module.pb")
