"""hub_adapter.tf2.restore: variables read in parallel, overlapped with the
rebuild, equal bit for bit what tf.saved_model.load gives.

Every model is built by the test in a temporary folder. Which restore ran is
observed, not assumed: TensorFlow's op callbacks are per thread, so the main
thread sees TensorFlow's own restore (one ``RestoreV2`` of every variable)
but, on the parallel path, only the read of the checkpoint's object graph
and one ``AssignVariableOp`` per variable (the reads run in other threads).

Run as a script (``python test_restore.py mirrored MODEL KERAS_MODEL OUT``)
it is the fresh process the MirroredStrategy test needs: the two logical CPU
devices must exist before TensorFlow initializes. (``save_many MODEL``
writes the many-dtypes model from an eager process, for the TF1 compat
session.)
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
DATA = os.path.join("variables", "variables.data-00000-of-00001")
TIMEOUT = 300


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


# -- helpers ------------------------------------------------------------------

class MainThreadOps:
  """Records the eager ``RestoreV2`` and ``AssignVariableOp`` ops that run in
  this thread while the context is open."""

  def __init__(self):
    self.restores = []
    self.assigns = 0

  def _callback(self, op_type, inputs, attrs, outputs, op_name=None,
                graph=None):
    del attrs, outputs, op_name
    if graph is not None:
      return None
    op_type = op_type.decode() if isinstance(op_type, bytes) else op_type
    if op_type == "RestoreV2":
      self.restores.append(
          sorted(n.decode() for n in inputs[1].numpy().tolist()))
    elif op_type == "AssignVariableOp":
      self.assigns += 1
    return None

  def __enter__(self):
    from tensorflow.python.framework import op_callbacks  # pylint: disable=g-import-not-at-top
    op_callbacks.add_op_callback(self._callback)
    return self

  def __exit__(self, *exc):
    from tensorflow.python.framework import op_callbacks  # pylint: disable=g-import-not-at-top
    op_callbacks.remove_op_callback(self._callback)

  @property
  def parallel(self) -> bool:
    """Only the object graph was read here: the parallel path ran."""
    return self.restores == [[GRAPH_KEY]]

  def tensorflow_restored(self, keys) -> bool:
    """TensorFlow's own restore read every variable key in one op."""
    return any(set(keys) <= set(names) for names in self.restores)


def variables_of(root):
  """The distinct variables reachable from a loaded object, in walk order."""
  tf = _tf()
  found, seen = [], set()
  for obj in tf.train.TrackableView(root).descendants():
    if isinstance(obj, tf.Variable) and id(obj) not in seen:
      seen.add(id(obj))
      found.append(obj)
  return found


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
  if a.dtype != b.dtype or a.shape != b.shape:
    return False
  if a.dtype == object:
    return a.tolist() == b.tolist() and np.array_equal(a, b)
  # tobytes: bit for bit (NaN payloads, -0.0); array_equal as asked for.
  return (np.array_equal(a, b, equal_nan=a.dtype.kind in "fc") and
          a.tobytes() == b.tobytes())


def assert_equals_tensorflow(path, root, **load_kwargs):
  """Every variable of ``root`` equals, bit for bit, tf.saved_model.load's."""
  tf = _tf()
  reference = tf.saved_model.load(path, **load_kwargs)
  got, want = variables_of(root), variables_of(reference)
  assert got and len(got) == len(want)
  for mine, theirs in zip(got, want):
    assert mine.dtype == theirs.dtype and mine.name == theirs.name
    assert _same_bits(mine.numpy(), theirs.numpy()), mine.name
  return got


def checkpoint_keys(path):
  tf = _tf()
  reader = tf.train.load_checkpoint(os.path.join(path, "variables",
                                                 "variables"))
  return [k for k in reader.get_variable_to_shape_map() if k != GRAPH_KEY]


# -- models -------------------------------------------------------------------

def save_many_dtypes(path: str, unknown_shape: bool = True) -> str:
  """A tf.Module with 34 variables of ten dtypes, nested containers, a
  variable tracked twice and (with ``unknown_shape``, which Keras 3 cannot
  wrap in a layer) one of unknown shape."""
  tf = _tf()
  rng = np.random.RandomState(0)

  class Many(tf.Module):

    def __init__(self):
      super().__init__()
      self.f32 = [tf.Variable(rng.randn(17, 5).astype(np.float32),
                              name=f"f32_{i}") for i in range(20)]
      self.f16 = tf.Variable(rng.randn(8).astype(np.float16), name="f16")
      self.f64 = tf.Variable(rng.randn(3, 3), name="f64")
      self.bf16 = tf.Variable(tf.constant([1.5, -2.25, 3e-3], tf.bfloat16),
                              name="bf16")
      self.i64 = tf.Variable(
          rng.randint(-2**40, 2**40, size=[6], dtype=np.int64), name="i64")
      self.i32 = tf.Variable(np.int32(-7), name="i32")
      self.u8 = tf.Variable(np.arange(250, 256, dtype=np.uint8), name="u8")
      self.flags = tf.Variable([True, False, True], name="flags")
      self.text = tf.Variable(["hub", "", "adapter \u2713", "x" * 300],
                              name="text")
      self.c64 = tf.Variable(np.array([1 + 2j, -3j], np.complex64),
                             name="c64")
      self.nested = {"a": tf.Variable(rng.randn(2, 2).astype(np.float32),
                                      name="nested_a"),
                     "b": [tf.Variable(np.float32(-0.0), name="neg_zero"),
                           tf.Variable(np.float32(np.nan), name="nan")]}
      self.shared = self.f32[3]  # The same variable under a second name.
      self.unknown = tf.Variable(
          rng.randn(4).astype(np.float32), name="unknown",
          shape=tf.TensorShape(None) if unknown_shape else None)
      self.frozen = tf.Variable(1.5, trainable=False, name="frozen")

    @tf.function(input_signature=[tf.TensorSpec([None, 17], tf.float32)])
    def __call__(self, x):
      return tf.matmul(x, self.shared) + self.nested["a"][0, 0]

  tf.saved_model.save(Many(), path)
  return path


def save_with_mutable_table(path: str) -> str:
  """Variables next to a MutableHashTable (checkpointed, not a variable)."""
  tf = _tf()
  module = tf.Module()
  module.table = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64,
                                                         -1)
  module.table.insert(["a", "b"], [1, 2])
  module.w = tf.Variable([[1.0, 2.0]], name="w")
  module.lookup = tf.function(
      lambda keys: module.table.lookup(keys),
      input_signature=[tf.TensorSpec([None], tf.string)])
  tf.saved_model.save(module, path)
  return path


def save_with_vocabulary_asset(path: str, tmp: str) -> str:
  """A StaticHashTable initialized from a vocabulary file (an asset, not a
  checkpointed value) next to variables."""
  tf = _tf()
  vocab = os.path.join(tmp, "vocab.txt")
  with open(vocab, "w") as f:
    f.write("alpha\nbeta\ngamma\n")

  class Text(tf.Module):

    def __init__(self):
      super().__init__()
      self.table = tf.lookup.StaticHashTable(
          tf.lookup.TextFileInitializer(
              vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
              tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER), -1)
      self.embeddings = tf.Variable(
          np.random.RandomState(1).randn(3, 4).astype(np.float32),
          name="embeddings")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, words):
      ids = self.table.lookup(words)
      return tf.gather(self.embeddings, tf.maximum(ids, 0))

  tf.saved_model.save(Text(), path)
  return path


def save_with_sharded_variable(path: str) -> str:
  """A ShardedVariable: saved as one tensor in two slices."""
  tf = _tf()
  from tensorflow.python.distribute import sharded_variable  # pylint: disable=g-import-not-at-top
  module = tf.Module()
  module.sharded = sharded_variable.ShardedVariable(
      [tf.Variable([1.0, 2.0], name="s/part_0"),
       tf.Variable([3.0], name="s/part_1")])
  module.plain = tf.Variable([4.0, 5.0], name="plain")
  module.read = tf.function(lambda: module.plain * 2.0, input_signature=[])
  tf.saved_model.save(module, path)
  return path


def save_tf_keras(path: str, optimizer: str = "") -> str:
  """A tf_keras model in the (legacy) SavedModel format; with ``optimizer``
  (``"adam"``, or ``"legacy"`` for the legacy Adam, whose slots are
  checkpointed as slot variables) trained one step and saved with it."""
  import tf_keras  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(3)
  model = tf_keras.Sequential([
      tf_keras.layers.InputLayer((6,)),
      tf_keras.layers.Dense(8, activation="relu"),
      tf_keras.layers.BatchNormalization(),
      tf_keras.layers.Dense(3)])
  if optimizer:
    model.compile(optimizer=(tf_keras.optimizers.legacy.Adam()
                             if optimizer == "legacy" else optimizer),
                  loss="mse")
    rng = np.random.RandomState(0)
    model.fit(rng.rand(16, 6), rng.rand(16, 3), epochs=1, verbose=0)
  model.save(path, save_format="tf", include_optimizer=bool(optimizer))
  return path


def save_tf1_saved_model(path: str, ref_kernel: bool = False,
                         saver: bool = True, partitioned: bool = True) -> str:
  """A TF1 SavedModel: resource variables (``kernel`` a ref variable with
  ``ref_kernel``), one partitioned in two (saved in slices) unless not
  ``partitioned``, int64 and string ones, and a lookup table. Without
  ``saver`` the meta graph has no ``saver_def``, as in TF1 Hub modules, so
  TensorFlow builds a default saver when it loads it."""
  tf = _tf()
  v1 = tf.compat.v1
  rng = np.random.RandomState(7)
  with tf.Graph().as_default():
    x = v1.placeholder(tf.float32, [None, 3], name="x")
    words = v1.placeholder(tf.string, [None], name="words")
    kernel = v1.Variable(rng.randn(3, 4).astype(np.float32), name="kernel",
                         use_resource=not ref_kernel)
    bias = v1.get_variable("bias", initializer=rng.randn(4).astype(
        np.float32), use_resource=True)
    parts = v1.get_variable(
        "parts", shape=[10, 4], initializer=v1.random_normal_initializer(
            seed=1), partitioner=(v1.fixed_size_partitioner(2)
                                  if partitioned else None))
    steps = v1.get_variable("steps", initializer=np.int64(42),
                            use_resource=True, trainable=False)
    names = v1.Variable(["alpha", "beta \u2713"], name="names")
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        ["a", "b"], [1, 2], tf.string, tf.int64), -1)
    whole = tf.concat(list(parts), 0) if partitioned else parts
    y = (tf.matmul(x, kernel) + bias + tf.reduce_sum(whole, 0) +
         tf.cast(steps, tf.float32))
    ids = table.lookup(words) + tf.cast(tf.size(names), tf.int64)
    with v1.Session() as session:
      session.run([v1.global_variables_initializer(),
                   v1.tables_initializer()])
      builder = v1.saved_model.Builder(path)
      builder.add_meta_graph_and_variables(
          session, ["serve"], signature_def_map={
              "serving_default": v1.saved_model.predict_signature_def(
                  {"x": x, "words": words}, {"y": y, "ids": ids})},
          main_op=v1.tables_initializer())
      builder.save()
  if not saver:
    from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
      proto.ParseFromString(f.read())
    for meta in proto.meta_graphs:
      meta.ClearField("saver_def")
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
      f.write(proto.SerializeToString())
  return path


def tf1_values(root):
  """The values of a TF1 SavedModel's variables as load_v1_in_v2 loaded it,
  read through a pruned function: ``root.variables``, and ``kernel`` when
  it is a ref variable (load_v1_in_v2 leaves those out of that list)."""
  tf = _tf()
  with root.graph.as_default():
    values = [tf.identity(v) for v in root.variables]
    if not any(v.name == "kernel:0" for v in root.variables):
      values.append(tf.identity(root.graph.get_tensor_by_name("kernel:0")))
  return [t.numpy() for t in root.prune([], values)()]


def save_keras3_export(path: str) -> str:
  """A Keras 3 model written with ``model.export``."""
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(5)
  inputs = keras.Input((5,))
  hidden = keras.layers.Dense(7, activation="relu")(inputs)
  hidden = keras.layers.BatchNormalization()(hidden)
  model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
  model(np.zeros((1, 5), np.float32))
  model.export(path)
  return path


@pytest.fixture(scope="module")
def many(tmp_path_factory):
  return save_many_dtypes(str(tmp_path_factory.mktemp("restore") / "many"))


@pytest.fixture(autouse=True)
def _default_restore(monkeypatch):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv(restore.ENV_PARALLEL, raising=False)
  monkeypatch.delenv(restore.ENV_THREADS, raising=False)


def _load(path, **kwargs):
  import hub_adapter  # pylint: disable=g-import-not-at-top
  with MainThreadOps() as ops:
    model = hub_adapter.load(path, **kwargs)
  return model, ops


def _method():
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  return restore.last_report().method


# -- the parallel path --------------------------------------------------------

def test_many_dtypes_restore_in_parallel_bit_for_bit(many):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  model, ops = _load(many)
  assert ops.parallel, ops.restores
  report = restore.last_report()
  assert report.method == "parallel" and report.reason == ""
  assert report.tensors == 34 and report.threads == restore.thread_count()
  got = assert_equals_tensorflow(many, model.raw)
  assert len(got) == 34 and ops.assigns == 34
  assert model.raw.shared is model.raw.f32[3]
  assert model.raw.text.numpy().tolist()[2] == "adapter \u2713".encode()
  x = np.ones((2, 17), np.float32)
  # A matmul, so TensorFlow and NumPy may round differently.
  np.testing.assert_allclose(
      model(x), x @ model.raw.f32[3].numpy() + model.raw.nested["a"][0, 0],
      rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", ["1", "3", "8"])
def test_thread_counts_give_the_same_values(many, monkeypatch, threads):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv(restore.ENV_THREADS, threads)
  assert restore.thread_count() == int(threads)
  model, ops = _load(many)
  assert ops.parallel
  assert_equals_tensorflow(many, model.raw)


def test_restore_module_load_matches_tensorflow_directly(many):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  with MainThreadOps() as ops:
    root = restore.load(many)
  assert ops.parallel
  assert_equals_tensorflow(many, root)


def test_io_device_option(many):
  tf = _tf()
  options = tf.saved_model.LoadOptions(experimental_io_device="/job:localhost")
  model, ops = _load(many, options=options)
  assert ops.parallel
  assert_equals_tensorflow(many, model.raw, options=options)


def test_reads_run_on_the_io_device(many):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  tf = _tf()
  # A device that does not exist: without soft placement the reads fail
  # there, as TensorFlow's own do.
  options = tf.saved_model.LoadOptions(
      experimental_io_device="/job:localhost/device:CPU:7")
  soft = tf.config.get_soft_device_placement()
  tf.config.set_soft_device_placement(False)
  try:
    with pytest.raises(Exception) as theirs:
      tf.saved_model.load(many, options=options)
    with pytest.raises(Exception) as ours:
      restore.load(many, options=options)
  finally:
    tf.config.set_soft_device_placement(soft)
  assert type(ours.value) is type(theirs.value)
  assert "CPU:7" in restore.last_report().reason


def test_tf_keras_savedmodel(tmp_path):
  path = save_tf_keras(str(tmp_path / "tfk"))
  model, ops = _load(path)
  assert ops.parallel, ops.restores
  got = assert_equals_tensorflow(path, model.raw)
  assert len(got) == 8  # 2 + 4 batch-norm + 2


def test_tf_keras_with_optimizer(tmp_path):
  # The (non-legacy) optimizer's slots are plain tracked variables.
  path = save_tf_keras(str(tmp_path / "tfk_adam"), optimizer="adam")
  model, ops = _load(path)
  assert ops.parallel, ops.restores
  assert len(assert_equals_tensorflow(path, model.raw)) > 8


def test_legacy_optimizer_slots_use_tensorflow_restore(tmp_path, caplog):
  path = save_tf_keras(str(tmp_path / "tfk_legacy"), optimizer="legacy")
  caplog.set_level(logging.INFO, logger="absl")
  model, ops = _load(path)
  assert not ops.parallel
  assert ops.tensorflow_restored(
      [k for k in checkpoint_keys(path) if "OPTIMIZER_SLOT" not in k])
  assert "slot variables" in caplog.text
  assert_equals_tensorflow(path, model.raw)


@pytest.mark.requires("keras3")
def test_keras3_export(tmp_path):
  path = save_keras3_export(str(tmp_path / "k3"))
  model, ops = _load(path)
  assert ops.parallel, ops.restores
  got = assert_equals_tensorflow(path, model.raw)
  assert len(got) >= 8


def test_keras_layer_weights_equal_tensorflow(tmp_path):
  import hub_adapter  # pylint: disable=g-import-not-at-top
  path = save_many_dtypes(str(tmp_path / "m"), unknown_shape=False)
  with MainThreadOps() as ops:
    layer = hub_adapter.KerasLayer(path)
  assert ops.parallel
  assert_equals_tensorflow(path, layer.resolved_object)
  assert len(layer.weights) == 34


def test_vocabulary_asset_table_is_initialized(tmp_path):
  path = save_with_vocabulary_asset(str(tmp_path / "text"), str(tmp_path))
  model, ops = _load(path)
  assert ops.parallel
  assert_equals_tensorflow(path, model.raw)
  out = model(_tf().constant(["beta", "nope"])).numpy()
  np.testing.assert_array_equal(out[0], model.raw.embeddings.numpy()[1])
  np.testing.assert_array_equal(out[1], model.raw.embeddings.numpy()[0])


# The saver's own graph, with a partitioned variable (6 reads: kernel, bias,
# 2 slices, steps, names); and, as in TF1 Hub modules, no saver (5 reads).
@pytest.mark.parametrize("saver", [True, False], ids=["saver", "no_saver"])
def test_tf1_saved_model_reads_in_parallel(tmp_path, saver):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  tf = _tf()
  path = save_tf1_saved_model(str(tmp_path / "tf1"), saver=saver,
                              partitioned=saver)
  root = restore.load(path, tags=["serve"])
  report = restore.last_report()
  assert report.method == "parallel_tf1", report
  assert report.tensors == (6 if saver else 5)
  reference = tf.saved_model.load(path, tags=["serve"])
  got, want = tf1_values(root), tf1_values(reference)
  assert len(got) == len(want) == report.tensors
  for mine, theirs in zip(got, want):
    assert _same_bits(mine, theirs)
  feed = {"x": tf.constant([[1.0, 2.0, 3.0]]),
          "words": tf.constant(["a", "b", "zz"])}
  mine = root.signatures["serving_default"](**feed)
  theirs = reference.signatures["serving_default"](**feed)
  for key in ("y", "ids"):
    assert _same_bits(mine[key].numpy(), theirs[key].numpy()), key
  assert mine["ids"].numpy().tolist() == [3, 4, 1]


def test_tf1_saved_model_through_hub_adapter_load(tmp_path):
  tf = _tf()
  path = save_tf1_saved_model(str(tmp_path / "tf1"))
  model, _ = _load(path, as_dict=True)
  assert _method() == "parallel_tf1"
  reference = tf.saved_model.load(path, tags=["serve"])
  feed = {"x": np.ones((2, 3), np.float32),
          "words": np.array([b"b", b"a"], object)}
  mine = model(feed)
  theirs = reference.signatures["serving_default"](
      **{k: tf.constant(v) for k, v in feed.items()})
  for key in ("y", "ids"):
    assert _same_bits(np.asarray(mine[key]), theirs[key].numpy()), key
  _load(path, restore="tensorflow")
  assert _method() == "tensorflow"


def test_tf1_ref_variables_use_tensorflow_restore(tmp_path, caplog):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  tf = _tf()
  caplog.set_level(logging.INFO, logger="absl")
  for saver in (True, False):
    path = save_tf1_saved_model(str(tmp_path / f"ref{saver}"),
                                ref_kernel=True, saver=saver)
    root = restore.load(path, tags=["serve"])
    report = restore.last_report()
    assert report.method == "tensorflow"
    assert ("Assign" if saver else "not a resource variable") in report.reason
    reference = tf.saved_model.load(path, tags=["serve"])
    got, want = tf1_values(root), tf1_values(reference)
    assert got and len(got) == len(want)
    for mine, theirs in zip(got, want):
      assert _same_bits(mine, theirs)
  assert "TensorFlow's own restore" in caplog.text


def test_tf1_partitioned_variable_without_saver_uses_tensorflow(tmp_path):
  # load_v1_in_v2 then lists each partition twice, as two objects: which
  # one its default saver restores is TensorFlow's business.
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  tf = _tf()
  path = save_tf1_saved_model(str(tmp_path / "tf1"), saver=False)
  root = restore.load(path, tags=["serve"])
  assert "shares its name" in restore.last_report().reason
  reference = tf.saved_model.load(path, tags=["serve"])
  got, want = tf1_values(root), tf1_values(reference)
  assert got and len(got) == len(want)
  for mine, theirs in zip(got, want):
    assert _same_bits(mine, theirs)


def test_tf1_graph_restore_failure_falls_back_to_tensorflow(tmp_path):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  tf = _tf()
  path = save_tf1_saved_model(str(tmp_path / "tf1"))
  with open(os.path.join(path, DATA), "rb") as f:
    data = f.read()
  with open(os.path.join(path, DATA), "wb") as f:
    f.write(_garble(data))
  with pytest.raises(Exception) as theirs:
    tf.saved_model.load(path, tags=["serve"])
  with pytest.raises(Exception) as ours:
    restore.load(path, tags=["serve"])
  assert type(ours.value) is type(theirs.value)
  assert restore.last_report().method == "tensorflow"


# -- what goes through TensorFlow's own restore -------------------------------

def test_mutable_table_uses_tensorflow_restore(tmp_path, caplog):
  path = save_with_mutable_table(str(tmp_path / "table"))
  caplog.set_level(logging.INFO, logger="absl")
  model, ops = _load(path, signature="serving_default")
  assert ops.tensorflow_restored(checkpoint_keys(path))
  assert "TensorFlow's own restore" in caplog.text and "'table'" in caplog.text
  assert_equals_tensorflow(path, model.raw)
  looked_up = model.raw.lookup(_tf().constant(["a", "b", "z"])).numpy()
  assert looked_up.tolist() == [1, 2, -1]


def test_sharded_variable_uses_tensorflow_restore(tmp_path, caplog):
  path = save_with_sharded_variable(str(tmp_path / "sharded"))
  caplog.set_level(logging.INFO, logger="absl")
  model, ops = _load(path, signature="serving_default")
  assert ops.tensorflow_restored(checkpoint_keys(path))
  assert "saved in slices" in caplog.text
  got = assert_equals_tensorflow(path, model.raw)
  assert sorted(v.numpy().tolist() for v in got) == [[1.0, 2.0, 3.0],
                                                      [4.0, 5.0]]


def test_graph_mode_is_left_to_tensorflow(many):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  tf = _tf()
  with tf.Graph().as_default():
    root = restore.load(many)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      values = session.run([v.read_value() for v in variables_of(root)])
  reference = [v.numpy() for v in variables_of(tf.saved_model.load(many))]
  assert len(values) == len(reference)
  for got, want in zip(values, reference):
    assert _same_bits(np.asarray(got), np.asarray(want))


@pytest.mark.tf1_compat
def test_tf1_compat_mode_restores_with_tensorflows_initializers(tmp_path):
  import hub_adapter  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  tf = _tf()
  path = str(tmp_path / "many")
  subprocess.run([sys.executable, os.path.abspath(__file__), "save_many",
                  path], check=True, timeout=TIMEOUT, capture_output=True)
  model = hub_adapter.load(path)
  assert restore.last_report() == restore.Report("tensorflow", "graph mode")
  variables = variables_of(model.raw)
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    got = session.run([v.read_value() for v in variables])
  with tf.Graph().as_default():
    reference = variables_of(tf.saved_model.load(path))
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      want = session.run([v.read_value() for v in reference])
  assert len(got) == len(want) == 34
  for mine, theirs in zip(got, want):
    assert _same_bits(np.asarray(mine), np.asarray(theirs))


# -- opting out ---------------------------------------------------------------

def test_env_opt_out_uses_tensorflow_restore(many, monkeypatch):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv(restore.ENV_PARALLEL, "0")
  model, ops = _load(many)
  assert not ops.parallel
  assert ops.tensorflow_restored(checkpoint_keys(many))
  assert_equals_tensorflow(many, model.raw)


def test_keyword_opt_out_uses_tensorflow_restore(many):
  model, ops = _load(many, restore="tensorflow")
  assert not ops.parallel
  assert ops.tensorflow_restored(checkpoint_keys(many))
  assert_equals_tensorflow(many, model.raw)


def test_keyword_wins_over_environment(many, monkeypatch):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv(restore.ENV_PARALLEL, "0")
  _, ops = _load(many, restore="parallel")
  assert ops.parallel
  monkeypatch.setenv(restore.ENV_PARALLEL, "1")
  _, ops = _load(many, restore="tensorflow")
  assert ops.tensorflow_restored(checkpoint_keys(many))
  _, ops = _load(many)
  assert ops.parallel


def test_bad_settings_are_typed_errors(many, monkeypatch):
  import hub_adapter  # pylint: disable=g-import-not-at-top
  from hub_adapter import errors  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.HubAdapterError, match="Unknown restore method"):
    hub_adapter.load(many, restore="fast")
  monkeypatch.setenv(restore.ENV_PARALLEL, "maybe")
  with pytest.raises(errors.HubAdapterError, match="not understood"):
    hub_adapter.load(many)
  monkeypatch.setenv(restore.ENV_PARALLEL, "1")
  monkeypatch.setenv(restore.ENV_THREADS, "0")
  with pytest.raises(errors.HubAdapterError, match="positive integer"):
    hub_adapter.load(many)


# -- a bad checkpoint fails as before -----------------------------------------

def _garble(data: bytes) -> bytes:
  middle = len(data) // 2
  return data[:middle] + bytes(b ^ 0x5A for b in data[middle:middle + 64]) + \
      data[middle + 64:]


def test_garbled_data_is_the_same_model_format_error(many, tmp_path,
                                                    monkeypatch):
  from hub_adapter import errors  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / "garbled")
  shutil.copytree(many, path)
  with open(os.path.join(path, DATA), "rb") as f:
    data = f.read()
  with open(os.path.join(path, DATA), "wb") as f:
    f.write(_garble(data))
  # Past the integrity check (it skips checksums above its size bound, as
  # for big models), so the restore itself meets the damage.
  monkeypatch.setenv("HUB_ADAPTER_VERIFY_MAX_BYTES", "0")
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  raised = {}
  for method in ("parallel", "tensorflow"):
    with pytest.raises(errors.ModelFormatError) as e:
      _load(path, restore=method)
    raised[method] = e.value
    if method == "parallel":
      # The failed read handed the load to TensorFlow, which raised.
      assert "DataLossError" in restore.last_report().reason
  assert str(raised["parallel"]) == str(raised["tensorflow"])
  assert raised["parallel"].context == raised["tensorflow"].context
  assert "variables.data" in str(raised["parallel"])


@pytest.mark.parametrize("damage", ["garble", "truncate"])
def test_restore_load_raises_tensorflows_own_error(many, tmp_path, damage):
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  tf = _tf()
  path = str(tmp_path / damage)
  shutil.copytree(many, path)
  with open(os.path.join(path, DATA), "rb") as f:
    data = f.read()
  with open(os.path.join(path, DATA), "wb") as f:
    f.write(_garble(data) if damage == "garble" else data[:len(data) // 2])
  with pytest.raises(Exception) as theirs:
    tf.saved_model.load(path)
  with pytest.raises(Exception) as ours:
    restore.load(path)
  assert type(ours.value) is type(theirs.value)
  assert str(ours.value) == str(theirs.value)


# -- MirroredStrategy, in a fresh process -------------------------------------

def test_mirrored_strategy_assigns_every_replica(many, tmp_path):
  out = str(tmp_path / "mirrored.json")
  keras_dir = save_many_dtypes(str(tmp_path / "k"), unknown_shape=False)
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  env.pop("HUB_ADAPTER_PARALLEL_RESTORE", None)
  done = subprocess.run(
      [sys.executable, os.path.abspath(__file__), "mirrored", many,
       keras_dir, out],
      env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
  assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
  with open(out) as f:
    result = json.load(f)
  assert result["parallel"], result
  assert result["types"] == ["MirroredVariable"] * 34
  assert result["replicas"] == [2] * 34
  assert result["mismatches"] == [], result["mismatches"]
  assert result["keras_layer_mismatches"] == []


def _mirrored_worker(model_dir: str, keras_dir: str, out: str) -> int:
  """Loads ``model_dir`` under MirroredStrategy over two logical CPUs and
  compares every replica of every variable with tf.saved_model.load's."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  import hub_adapter  # pylint: disable=g-import-not-at-top
  reference = [v.numpy() for v in variables_of(tf.saved_model.load(model_dir))]
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  with MainThreadOps() as ops:
    with strategy.scope():
      model = hub_adapter.load(model_dir)
  loaded = variables_of(model.raw)
  mismatches = []
  for index, (variable, want) in enumerate(zip(loaded, reference)):
    for replica in strategy.experimental_local_results(variable):
      if not _same_bits(replica.numpy(), want):
        mismatches.append([index, variable.name, replica.device])
  layer_mismatches = []
  if keras_dir:
    keras_reference = [v.numpy() for v in variables_of(
        tf.saved_model.load(keras_dir))]
    with strategy.scope():
      layer = hub_adapter.KerasLayer(keras_dir)
    keras_loaded = variables_of(layer.resolved_object)
    if len(keras_loaded) != len(keras_reference):
      layer_mismatches.append(["count", len(keras_loaded)])
    for variable, want in zip(keras_loaded, keras_reference):
      for replica in strategy.experimental_local_results(variable):
        if not _same_bits(replica.numpy(), want):
          layer_mismatches.append([variable.name, replica.device])
  with open(out, "w") as f:
    json.dump({
        "parallel": ops.parallel, "restores": ops.restores,
        "types": [type(v).__name__ for v in loaded],
        "replicas": [len(strategy.experimental_local_results(v))
                     for v in loaded],
        "mismatches": mismatches,
        "keras_layer_mismatches": layer_mismatches,
    }, f)
  return 0



# -- every test model of the project ------------------------------------------

def _every_model():
  if __name__ == "__main__":  # Run as the helper script: nothing to collect.
    return []
  import fixtures  # pylint: disable=g-import-not-at-top
  models = fixtures.locate()
  return [(name, models.entry(name)["format"], models.path(name))
          for name in models.names()]


@pytest.mark.parametrize("name,model_format,path", _every_model(),
                         ids=lambda v: v if "/" not in str(v) else "")
def test_every_test_model_equals_tensorflow_bit_for_bit(name, model_format,
                                                       path):
  """restore.load gives every variable tf.saved_model.load gives, bit for
  bit; the TF1 Hub modules are loaded with their default tag set, as
  load_v1_in_v2 sees them in TF2."""
  from hub_adapter import reader  # pylint: disable=g-import-not-at-top
  from hub_adapter import op_libraries  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf2 import restore  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf2 import trackable  # pylint: disable=g-import-not-at-top
  tf = _tf()
  # Models with TF Text ops need their op library, as hub_adapter.load
  # imports it.
  op_libraries.ensure_for_saved_model(reader.read_saved_model(path),
                                      path=path)
  tags = [] if model_format == "tf1_hub" else None
  root = restore.load(path, tags=tags)
  report = restore.last_report()
  reference = tf.saved_model.load(path, tags=tags)
  if model_format == "tf1_hub":
    # Without the graph-side handles of partitioned variables, which
    # cannot be read (hub_adapter's models leave them out the same way).
    got = {v.name: v.numpy() for v in trackable.live(root.variables)}
    want = {v.name: v.numpy() for v in trackable.live(reference.variables)}
    assert sorted(got) == sorted(want)
    for key in want:
      assert _same_bits(got[key], want[key]), (name, key)
  else:
    got, want = variables_of(root), variables_of(reference)
    assert len(got) == len(want)
    for mine, theirs in zip(got, want):
      assert mine.name == theirs.name
      assert _same_bits(mine.numpy(), theirs.numpy()), (name, mine.name)
  assert report.method in ("parallel", "parallel_tf1", "tensorflow")
  assert (report.method == "tensorflow") == bool(report.reason), report


if __name__ == "__main__":
  if len(sys.argv) == 5 and sys.argv[1] == "mirrored":
    sys.exit(_mirrored_worker(sys.argv[2], sys.argv[3], sys.argv[4]))
  if len(sys.argv) == 3 and sys.argv[1] == "save_many":
    save_many_dtypes(sys.argv[2])
    sys.exit(0)
  sys.exit("usage: test_restore.py mirrored MODEL_DIR KERAS_DIR OUT_JSON\n"
           "       test_restore.py save_many MODEL_DIR")

