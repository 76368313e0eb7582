"""A module created and exported by hub_adapter is a real TF1 Hub module.

The module of created_modules.py is created and exported by hub_adapter in
this TF1 compat session, evaluated by hub_adapter's own Module, and then
evaluated by tensorflow_hub itself:

- on the TF 2.21 stack, in subprocesses: tensorflow_hub 0.15's ``hub.Module``
  on TF 2.15 (the interpreter in HUB_ADAPTER_TF215_PYTHON, by default
  ``<repo>/.tox/tf215/bin/python``; ``tox -e tf215`` builds it), and
  ``hub.load`` in TF2 on TF 2.21;
- on the TF 2.15 stack, in this process: ``hub.Module``.

Outputs that do not depend on dropout must agree to rtol 1e-5; dropout
outputs are checked for being either 0 or the kept value scaled by
1 / (1 - rate). Variables, regularization losses, update op counts, moving
statistics after one update, and attached messages must agree too.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import created_modules  # pylint: disable=g-import-not-at-top,wrong-import-position

pytestmark = pytest.mark.tf1_compat

RTOL = 1e-5
ATOL = 1e-6
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "interop_check.py")
VARIANTS = {"train": ["train"], "default": []}


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


@pytest.fixture(scope="module")
def created(tmp_path_factory):
  """Creates and exports the module with hub_adapter; evaluates it with
  hub_adapter's Module."""
  tf = _tf()
  from hub_adapter.tf1 import creation, module  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("interop")
  vocab = created_modules.write_vocab(str(root))
  spec = creation.create_module_spec(
      created_modules.make_module_fn(vocab, creation),
      tags_and_args=created_modules.TAGS_AND_ARGS)
  path = str(root / "module")
  with tf.Graph().as_default():
    exporter = module.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      exporter.export(path, session)
  inputs_path = created_modules.write_inputs(str(root / "inputs.npz"))
  data = created_modules.read_inputs(inputs_path)
  ours = {key: created_modules.evaluate_module(module.Module, path, data, tags)
          for key, tags in VARIANTS.items()}
  return {"path": path, "inputs": inputs_path, "ours": ours}


def _tf215_python() -> str:
  python = os.environ.get("HUB_ADAPTER_TF215_PYTHON") or os.path.join(
      REPO, ".tox", "tf215", "bin", "python")
  if not (os.path.isfile(python) and os.access(python, os.X_OK)):
    pytest.fail(
        f"The TF 2.15 interpreter {python!r} (HUB_ADAPTER_TF215_PYTHON) does "
        "not exist. The interop test needs tensorflow_hub 0.15's hub.Module, "
        "which only runs there: run `tox -e tf215` first to build it, or set "
        "HUB_ADAPTER_TF215_PYTHON to a Python with tensorflow==2.15.* and "
        "tensorflow-hub==0.15.0.")
  return python


def _run(python: str, api: str, created) -> dict:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env["PYTHONPATH"] = os.pathsep.join(
      [REPO] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  proc = subprocess.run(
      [python, SCRIPT, api, created["path"], created["inputs"]],
      capture_output=True, text=True, env=env, timeout=600, check=False)
  lines = [l for l in proc.stdout.splitlines()
           if l.startswith("INTEROP_JSON ")]
  assert proc.returncode == 0 and lines, (
      f"{python} {SCRIPT} {api} failed (exit {proc.returncode}):\n"
      f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
  return json.loads(lines[-1][len("INTEROP_JSON "):])


def _assert_dropout(dropped, features):
  dropped, features = np.asarray(dropped), np.asarray(features)
  assert dropped.shape == features.shape
  kept = features / (1.0 - created_modules.DROPOUT_RATE)
  ok = np.isclose(dropped, 0.0, atol=ATOL) | np.isclose(
      dropped, kept, rtol=RTOL, atol=ATOL)
  assert ok.all(), (dropped, features)


def _compare_outputs(theirs, ours, train: bool, who: str):
  for signature, deterministic in created_modules.DETERMINISTIC.items():
    assert set(theirs[signature]) == set(ours[signature]), signature
    for key, exact in deterministic.items():
      want, got = np.asarray(theirs[signature][key]), ours[signature][key]
      assert got.shape == want.shape, (who, signature, key)
      if exact or not train:
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{who}: {signature}/{key}")
  if train:
    for side in (theirs, ours):
      _assert_dropout(side["features"]["dropped"],
                      side["features"]["features"])


def _compare_module_results(theirs, ours, who: str):
  for key in VARIANTS:
    mine, other = ours[key], theirs[key]
    train = key == "train"
    _compare_outputs(other["outputs"], mine["outputs"], train, f"{who} {key}")
    assert sorted(other["variables"]) == sorted(mine["variables"])
    for name, value in mine["variables"].items():
      np.testing.assert_array_equal(value, np.asarray(other["variables"][name]),
                                    err_msg=name)
    np.testing.assert_allclose(mine["regularization_losses"],
                               other["regularization_losses"], rtol=RTOL)
    assert mine["update_ops"] == other["update_ops"]
    assert mine["image_size"] == other["image_size"] == [6, 6]
    assert mine["labels"] == other["labels"] == created_modules.LABELS
  # hub.Module collects 2 update ops per call of the train variant (two
  # calls here) and one regularization loss, none for the inference variant.
  assert ours["train"]["update_ops"] == 4
  assert len(ours["train"]["regularization_losses"]) == 1
  assert ours["default"]["update_ops"] == 0
  assert ours["default"]["regularization_losses"] == []
  for name in created_modules.MOVING:
    after = ours["train"]["moving_after_update"][name]
    np.testing.assert_allclose(
        after, theirs["train"]["moving_after_update"][name], rtol=RTOL,
        atol=ATOL, err_msg=name)
    # The update really moved the statistics away from their initial values.
    assert not np.allclose(after, ours["train"]["variables"][name])


@pytest.mark.requires("tf221")
def test_hub_module_of_tensorflow_hub_0_15_on_tf215_agrees(created):
  report = _run(_tf215_python(), "hub_module", created)
  assert report["tensorflow"].startswith("2.15.")
  assert report["tensorflow_hub"] == "0.15.0"
  _compare_module_results(report["results"], created["ours"],
                          "hub.Module 0.15 on TF 2.15")


@pytest.mark.requires("tf221")
def test_hub_load_in_tf2_agrees(created):
  report = _run(sys.executable, "hub_load", created)
  assert report["tensorflow"] == _tf().__version__
  for key in VARIANTS:
    _compare_outputs(report["results"][key]["outputs"],
                     created["ours"][key]["outputs"], key == "train",
                     f"hub.load {key}")


@pytest.mark.requires("hub_module")
def test_real_hub_module_in_process_agrees(created):
  from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
  hub = import_tensorflow_hub()
  data = created_modules.read_inputs(created["inputs"])
  theirs = {key: created_modules.evaluate_module(hub.Module, created["path"],
                                                 data, tags)
            for key, tags in VARIANTS.items()}
  _compare_module_results(theirs, created["ours"], "hub.Module in process")
  spec = hub.load_module_spec(created["path"])
  assert sorted(sorted(t) for t in spec.get_tags()) == [[], ["train"]]
  assert sorted(spec.get_signature_names()) == ["default", "features"]
