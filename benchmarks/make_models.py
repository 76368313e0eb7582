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
# The restore section's shapes: name -> (variables, float32 elements each).
RESTORE_SHAPES = {
    "restore_8x64mb": (8, 16 << 20),     # 512 MiB, 8 variables of 64 MiB
    "restore_8x128mb": (8, 32 << 20),    # 1 GiB, 8 variables of 128 MiB
    "restore_256x2mb": (256, 512 << 10),  # 512 MiB, 256 variables of 2 MiB
}
# A TF1 SavedModel of the 256-tensor shape laid out as TF1 Hub modules are
# (one meta graph, no saver_def), which tf.saved_model.load restores through
# load_v1_in_v2.
RESTORE_TF1 = "restore_tf1_256x2mb"
RESTORE_BERT = "restore_bert_base"
# BERT-base: 12 layers of width 768, 12 heads, 3072 in the feed-forward
# part, a 30522-word vocabulary; 199 tensors, 110 M parameters (418 MiB).
BERT_BASE = {"vocab": 30522, "hidden": 768, "layers": 12, "heads": 12,
             "intermediate": 3072, "positions": 512, "types": 2}


def variable_bytes(size: str) -> int:
  count, rows, cols = LOAD_SIZES[size]
  return count * rows * cols * 4


def restore_bytes(name: str) -> int:
  """The variable bytes of a restore-section model."""
  if name == RESTORE_BERT:
    b = BERT_BASE
    h, i = b["hidden"], b["intermediate"]
    per_layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    return 4 * ((b["vocab"] + b["positions"] + b["types"]) * h + 2 * h
                + b["layers"] * per_layer + h * h + h)
  count, elements = RESTORE_SHAPES[
      "restore_256x2mb" if name == RESTORE_TF1 else name]
  return count * elements * 4


def restore_tensors(name: str) -> int:
  """How many variables a restore-section model has."""
  if name == RESTORE_BERT:
    return 3 + 2 + 16 * BERT_BASE["layers"] + 2
  shape = "restore_256x2mb" if name == RESTORE_TF1 else name
  return RESTORE_SHAPES[shape][0]


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


def _tf2_restore_shape(path: str, name: str) -> None:
  """``count`` float32 variables of equal size; __call__ reads each."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  count, elements = RESTORE_SHAPES[name]
  rng = np.random.default_rng(2)
  module = tf.Module()
  module.weights = [
      tf.Variable(rng.standard_normal(elements, dtype=np.float32),
                  name=f"w{i}") for i in range(count)]

  @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
  def call(x):
    return tf.add_n([x + w[0] for w in module.weights])

  module.__call__ = call
  tf.saved_model.save(module, path, signatures={"serving_default": call})


def _tf1_restore_shape(path: str) -> None:
  """The 256 x 2 MiB shape as a TF1 SavedModel: a tf.compat.v1 graph with
  resource variables and a ``serve`` meta graph whose ``saver_def`` is
  removed, as TF1 Hub modules are exported (TensorFlow then builds a
  default saver when it loads it)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  count, elements = RESTORE_SHAPES["restore_256x2mb"]
  v1 = tf.compat.v1
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [None], name="x")
    weights = [v1.get_variable(
        f"w{i}", [elements], use_resource=True,
        initializer=v1.random_normal_initializer(seed=i)) for i in range(count)]
    y = tf.add_n([x + w[0] for w in weights])
    with v1.Session() as session:
      session.run(v1.global_variables_initializer())
      builder = v1.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(
          session, ["serve"], signature_def_map={
              "serving_default": v1.saved_model.predict_signature_def(
                  {"x": x}, {"y": y})})
      builder.save()
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
  for meta in proto.meta_graphs:
    meta.ClearField("saver_def")
  with open(os.path.join(path, "saved_model.pb"), "wb") as f:
    f.write(proto.SerializeToString())


def _tf2_bert_base(path: str) -> None:
  """A BERT-base encoder with random weights, as tf.Modules: embeddings,
  12 transformer layers (self-attention, feed-forward, layer norms) and a
  pooler; __call__ takes TF Hub's BERT inputs (``input_word_ids``,
  ``input_mask``, ``input_type_ids``) and is traced with and without
  dropout, as hub encoders are."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  b = BERT_BASE
  rng = np.random.default_rng(3)

  def normal(*shape):
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)

  class Dense(tf.Module):

    def __init__(self, d_in, d_out, name):
      super().__init__(name=name)
      self.kernel = tf.Variable(normal(d_in, d_out), name="kernel")
      self.bias = tf.Variable(np.zeros(d_out, np.float32), name="bias")

    def __call__(self, x):
      return tf.einsum("btd,de->bte", x, self.kernel) + self.bias

  class LayerNorm(tf.Module):

    def __init__(self, width, name):
      super().__init__(name=name)
      self.gamma = tf.Variable(np.ones(width, np.float32), name="gamma")
      self.beta = tf.Variable(np.zeros(width, np.float32), name="beta")

    def __call__(self, x):
      mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
      return (x - mean) * tf.math.rsqrt(variance + 1e-12) * self.gamma + \
          self.beta

  def dropout(x, training):
    return tf.nn.dropout(x, rate=0.1) if training else x

  class Layer(tf.Module):

    def __init__(self, index):
      super().__init__(name=f"transformer_layer_{index}")
      h, i = b["hidden"], b["intermediate"]
      self.query = Dense(h, h, "query")
      self.key = Dense(h, h, "key")
      self.value = Dense(h, h, "value")
      self.attention_output = Dense(h, h, "attention_output")
      self.attention_norm = LayerNorm(h, "attention_norm")
      self.intermediate = Dense(h, i, "intermediate")
      self.output = Dense(i, h, "output")
      self.output_norm = LayerNorm(h, "output_norm")

    def __call__(self, x, bias, training):
      heads, width = b["heads"], b["hidden"] // b["heads"]

      def split(t):
        shape = tf.shape(t)
        return tf.transpose(tf.reshape(t, [shape[0], shape[1], heads, width]),
                            [0, 2, 1, 3])

      q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
      scores = tf.matmul(q, k, transpose_b=True) / np.float32(np.sqrt(width))
      weights = dropout(tf.nn.softmax(scores + bias), training)
      context = tf.transpose(tf.matmul(weights, v), [0, 2, 1, 3])
      context = tf.reshape(context, tf.shape(x))
      x = self.attention_norm(
          x + dropout(self.attention_output(context), training))
      hidden = tf.nn.gelu(self.intermediate(x), approximate=True)
      return self.output_norm(x + dropout(self.output(hidden), training))

  class Encoder(tf.Module):

    def __init__(self):
      super().__init__(name="bert_encoder")
      h = b["hidden"]
      self.word_embeddings = tf.Variable(normal(b["vocab"], h),
                                         name="word_embeddings")
      self.position_embeddings = tf.Variable(normal(b["positions"], h),
                                             name="position_embeddings")
      self.type_embeddings = tf.Variable(normal(b["types"], h),
                                         name="type_embeddings")
      self.embedding_norm = LayerNorm(h, "embedding_norm")
      self.layers = [Layer(i) for i in range(b["layers"])]
      self.pooler = Dense(h, h, "pooler")

    @tf.function
    def __call__(self, inputs, training=False):
      ids = inputs["input_word_ids"]
      length = tf.shape(ids)[1]
      x = (tf.gather(self.word_embeddings, ids)
           + tf.gather(self.type_embeddings, inputs["input_type_ids"])
           + self.position_embeddings[tf.newaxis, :length])
      x = dropout(self.embedding_norm(x), training)
      mask = tf.cast(inputs["input_mask"], tf.float32)
      bias = (1.0 - mask[:, tf.newaxis, tf.newaxis, :]) * -10000.0
      for layer in self.layers:
        x = layer(x, bias, training)
      pooled = tf.tanh(self.pooler(x[:, :1])[:, 0])
      return {"sequence_output": x, "pooled_output": pooled}

  encoder = Encoder()
  spec = {k: tf.TensorSpec([None, None], tf.int32, name=k)
          for k in ("input_word_ids", "input_mask", "input_type_ids")}
  for training in (False, True):
    encoder.__call__.get_concrete_function(spec, training)
  serve = encoder.__call__.get_concrete_function(spec, False)
  tf.saved_model.save(encoder, path, signatures={"serving_default": serve})


def _build_tf2(root: str, name: str) -> None:
  path = os.path.join(root, name)
  if name in RESTORE_SHAPES:
    _tf2_restore_shape(path, name)
  elif name == RESTORE_TF1:
    _tf1_restore_shape(path)
  elif name == RESTORE_BERT:
    _tf2_bert_base(path)
  elif name.startswith("tf2_load_"):
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
