"""Fine-tuning a KerasLayer under tf.distribute equals single-device training.

Every run is its own process (tests/keras_distribute_worker.py) with a
bounded timeout: MirroredStrategy over two logical CPU devices (set before
TensorFlow initializes), and MultiWorkerMirroredStrategy with two worker
processes on 127.0.0.1 (free ports picked at run time). Each is compared
with single-device training on the same data, seed and global batch, with
rtol = atol = 1e-5.

Keras 3's own ``Model.fit`` cannot run under MultiWorkerMirroredStrategy
(Keras 3.15 on TF 2.21: its data adapter fails on the distributed dataset,
even for a plain Dense model), so the multi-worker runs use Keras 2:
tf_keras via ``TF_USE_LEGACY_KERAS=1`` on TF 2.21, tf.keras on TF 2.15.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import keras_distribute_worker as worker
from hub_adapter import runtime

TOL = {"rtol": 1e-5, "atol": 1e-5}
TIMEOUT = 300
WORKER = os.path.join(os.path.dirname(__file__), "keras_distribute_worker.py")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("distribute") / "tiny")
  worker.save_tiny_model(path)
  return path


def _env(legacy_keras: bool, tf_config=None):
  env = dict(os.environ)
  env.pop("TF_CONFIG", None)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if legacy_keras:
    env["TF_USE_LEGACY_KERAS"] = "1"
  if tf_config is not None:
    env["TF_CONFIG"] = json.dumps(tf_config)
  return env


def _start(strategy, model, out, env, log):
  return subprocess.Popen(
      [sys.executable, WORKER, strategy, model, out], env=env,
      stdout=log, stderr=subprocess.STDOUT)


def _finish(processes, logs):
  """Waits for every process (bounded); kills the ones we started if late."""
  try:
    for process in processes:
      process.wait(timeout=TIMEOUT)
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()
  for process, log in zip(processes, logs):
    with open(log.name) as f:
      text = f.read()
    assert process.returncode == 0, text[-5000:]


@pytest.fixture(scope="module")
def single_device(tiny_model, tmp_path_factory):
  """Single-device runs, by whether Keras 2 was forced (run at most once)."""
  runs = {}

  def get(legacy_keras):
    if legacy_keras not in runs:
      folder = tmp_path_factory.mktemp("single")
      runs[legacy_keras] = _run(folder, "single", "single", tiny_model,
                                legacy_keras)
    return runs[legacy_keras]

  return get


def _run(tmp_path, name, strategy, model, legacy_keras):
  out = str(tmp_path / f"{name}.npz")
  with open(tmp_path / f"{name}.log", "w") as log:
    process = _start(strategy, model, out, _env(legacy_keras), log)
    _finish([process], [log])
  return np.load(out)


def _weights(result):
  return [result[k] for k in sorted(
      (k for k in result.files if k.startswith("arr_")),
      key=lambda k: int(k.split("_")[1]))]


def _assert_same_training(single, distributed):
  a, b = _weights(single), _weights(distributed)
  assert len(a) == len(b) == 5  # the hub model's 3 variables + Dense
  for i, (x, y) in enumerate(zip(a, b)):
    np.testing.assert_allclose(y, x, err_msg=f"weight {i}", **TOL)
  np.testing.assert_allclose(distributed["loss"], single["loss"], **TOL)
  assert single["loss"][-1] < single["loss"][0]


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  try:
    for s in sockets:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def test_mirrored_strategy_matches_single_device(tiny_model, single_device,
                                                 tmp_path):
  # Keras 2 stacks share one single-device run with the multi-worker test.
  legacy = runtime.keras_flavour() == runtime.TF_KERAS
  single = single_device(legacy)
  mirrored = _run(tmp_path, "mirrored", "mirrored", tiny_model, legacy)
  assert str(mirrored["flavour"]) == runtime.keras_flavour()
  assert str(mirrored["variable_type"]) == "MirroredVariable"
  _assert_same_training(single, mirrored)
  # load() picked LoadOptions(experimental_io_device=...) by itself under
  # the strategy, and none without one.
  assert [str(d) for d in single["io_devices"]] == ["None"]
  assert all(d not in ("None", "") for d in mirrored["io_devices"])


def test_multi_worker_mirrored_strategy_matches_single_device(
    tiny_model, single_device, tmp_path):
  single = single_device(True)
  ports = _free_ports(2)
  cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
  processes, logs, outs = [], [], []
  try:
    for index in range(2):
      out = str(tmp_path / f"worker{index}.npz")
      log = open(tmp_path / f"worker{index}.log", "w")
      env = _env(True, {"cluster": cluster,
                        "task": {"type": "worker", "index": index}})
      processes.append(_start("multi_worker", tiny_model, out, env, log))
      logs.append(log)
      outs.append(out)
    _finish(processes, logs)
  finally:
    for log in logs:
      log.close()
  for out in outs:
    result = np.load(out)
    assert str(result["flavour"]) == runtime.TF_KERAS
    assert str(result["variable_type"]) == "MirroredVariable"
    assert all(d not in ("None", "") for d in result["io_devices"])
    _assert_same_training(single, result)
