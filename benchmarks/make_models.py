"""Builds the benchmark models in a folder outside the repository.

TF2 SavedModels are written with the running TensorFlow (run this with the
TF 2.21 environment); TF1 Hub modules need tensorflow_hub 0.15's
``hub.create_module_spec`` and are written when this runs in the TF 2.15
environment. A model is rebuilt only when its ``NAME.done`` marker is missing
or names another generator version, so repeated benchmark runs reuse them.

Usage (the driver ``run.py`` calls this for you):
  python benchmarks/make_models.py --dir /tmp/hub_adapter_bench --kind tf2 \
      --names tf2_load_1mb,tf2_call
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

# Bump when a model's definition changes, so stale copies are rebuilt.
GENERATOR_VERSION = "3"

MIB = 1 << 20
# name -> (number of variables, rows, columns) of float32 variables.
LOAD_SIZES = {
    "1mb": (4, 1024, 64),        # 1 MiB
    "100mb": (25, 1024, 1024),   # 100 MiB
    "1gb": (256, 1024, 1024),    # 1 GiB
}
LOAD_INPUT_DIM = 1024
CALL_DIMS = (128, 256, 128)
FIT_DIMS = (256, 512, 512)


def variable_bytes(size: str) -> int:
  count, rows, cols = LOAD_SIZES[size]
  return count * rows * cols * 4


def model_names(kind: str, sizes) -> list:
  """The models a benchmark run needs for the given load sizes."""
  if kind == "tf2":
    return [f"tf2_load_{s}" for s in sizes] + ["tf2_call", "tf2_fit"]
  return [f"tf1_load_{s}" for s in sizes if s != "1gb"]


def _done_path(root: str, name: str) -> str:
  return os.path.join(root, name + ".done")


def is_built(root: str, name: str) -> bool:
  try:
    with open(_done_path(root, name)) as f:
      return json.load(f).get("version") == GENERATOR_VERSION
  except (OSError, ValueError):
    return False


def _mark_built(root: str, name: str, **facts) -> None:
  with open(_done_path(root, name), "w") as f:
    json.dump({"version": GENERATOR_VERSION, **facts}, f)


# TF2 SavedModels ------------------------------------------------------------
def _tf2_load_model(path: str, size: str) -> None:
  """A SavedModel whose __call__ touches every variable once."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  count, rows, cols = LOAD_SIZES[size]
  rng = np.random.default_rng(0)
  module = tf.Module()
  module.weights = [
      tf.Variable(rng.standard_normal((rows, cols), dtype=np.float32),
                  name=f"w{i}") for i in range(count)]

  @tf.function(input_signature=[
      tf.TensorSpec([None, LOAD_INPUT_DIM], tf.float32)])
  def call(x):
    return tf.add_n([tf.reduce_sum(tf.matmul(x, w), axis=1)
                     for w in module.weights])

  module.__call__ = call
  tf.saved_model.save(module, path, signatures={"serving_default": call})


def _dense_stack(tf, rng, dims, name):
  import numpy as np  # pylint: disable=g-import-not-at-top
  layers = []
  for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
    kernel = tf.Variable(
        (rng.standard_normal((d_in, d_out), dtype=np.float32)
        / np.float32(np.sqrt(d_in))),
        name=f"{name}/dense{i}/kernel")
    bias = tf.Variable(np.zeros((d_out,), np.float32),
                       name=f"{name}/dense{i}/bias")
    layers.append((kernel, bias))
  return layers


def _tf2_mlp_model(path: str, dims) -> None:
  """A reusable SavedModel: ReLU MLP with __call__(inputs, training)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.python.trackable import autotrackable  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)
  obj = autotrackable.AutoTrackable()
  obj.layers = _dense_stack(tf, rng, dims, "mlp")
  flat = [v for layer in obj.layers for v in layer]

  def forward(x):
    for kernel, bias in obj.layers:
      x = tf.nn.relu(tf.matmul(x, kernel) + bias)
    return x

  @tf.function
  def call(x, training=False):
    del training  # No dropout or batch norm: training changes nothing.
    return forward(x)

  spec = tf.TensorSpec([None, dims[0]], tf.float32)
  call.get_concrete_function(spec, False)
  call.get_concrete_function(spec, True)

  @tf.function(input_signature=[spec])
  def serve(x):
    return {"output": forward(x)}

  obj.__call__ = call
  obj.variables = flat
  obj.trainable_variables = flat
  obj.regularization_losses = []
  tf.saved_model.save(obj, path, signatures={"serving_default": serve})


def _build_tf2(root: str, name: str) -> None:
  path = os.path.join(root, name)
  if name.startswith("tf2_load_"):
    _tf2_load_model(path, name[len("tf2_load_"):])
  elif name == "tf2_call":
    _tf2_mlp_model(path, CALL_DIMS)
  elif name == "tf2_fit":
    _tf2_mlp_model(path, FIT_DIMS)
  else:
    raise ValueError(f"unknown TF2 benchmark model {name!r}")


# TF1 Hub modules ------------------------------------------------------------
def _build_tf1(root: str, name: str) -> None:
  """A TF1 Hub module like _tf2_load_model, made with hub 0.15."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  hub = _common.import_hub()
  if not hasattr(hub, "create_module_spec"):
    raise RuntimeError("TF1 Hub modules need tensorflow_hub 0.15 "
                       "(run this with the tf215 environment)")
  size = name[len("tf1_load_"):]
  count, rows, cols = LOAD_SIZES[size]
  v1 = tf.compat.v1

  def module_fn():
    x = v1.placeholder(tf.float32, [None, LOAD_INPUT_DIM], name="x")
    weights = [v1.get_variable(f"w{i}", [rows, cols],
                               initializer=v1.random_normal_initializer(
                                   seed=i)) for i in range(count)]
    y = tf.add_n([tf.reduce_sum(tf.matmul(x, w), axis=1) for w in weights])
    hub.add_signature(inputs={"x": x}, outputs={"default": y})

  path = os.path.join(root, name)
  with tf.Graph().as_default():
    spec = hub.create_module_spec(module_fn)
    module = hub.Module(spec)
    with v1.Session() as session:
      session.run(v1.global_variables_initializer())
      module.export(path, session)


def archive(root: str, name: str) -> str:
  """Writes NAME.tar.gz with relative entries like tfhub.dev's archives."""
  folder = os.path.join(root, name)
  target = os.path.join(root, name + ".tar.gz")
  if os.path.exists(target) and is_built(root, name + ".tar.gz"):
    return target
  tmp = target + ".tmp"
  # Level 1: the float data does not compress anyway; this keeps it quick.
  with tarfile.open(tmp, "w:gz", compresslevel=1) as tar:
    tar.add(folder, arcname=".")
  os.replace(tmp, target)
  _mark_built(root, name + ".tar.gz", bytes=os.path.getsize(target))
  return target


def build(root: str, kind: str, names) -> dict:
  """Builds the missing models; returns {name: seconds it took or 0}."""
  os.makedirs(root, exist_ok=True)
  took = {}
  for name in names:
    if is_built(root, name):
      took[name] = 0.0
      continue
    path = os.path.join(root, name)
    shutil.rmtree(path, ignore_errors=True)
    start = time.perf_counter()
    (_build_tf2 if kind == "tf2" else _build_tf1)(root, name)
    took[name] = time.perf_counter() - start
    _mark_built(root, name, seconds=took[name])
  return took


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dir", required=True)
  parser.add_argument("--kind", choices=("tf2", "tf1"), required=True)
  parser.add_argument("--names", required=True,
                      help="comma-separated model names")
  parser.add_argument("--archive", default="",
                      help="comma-separated models to also write as .tar.gz")
  args = parser.parse_args(argv)
  _common.quiet_tensorflow()
  root = os.path.abspath(args.dir)
  if root == _common.REPO or root.startswith(_common.REPO + os.sep):
    sys.exit(f"refusing to write benchmark models inside the repo: {root}")
  took = build(root, args.kind, [n for n in args.names.split(",") if n])
  for name in filter(None, args.archive.split(",")):
    archive(root, name)
  _common.emit({"built": took})


if __name__ == "__main__":
  main()
