"""Fine-tunes a hub_adapter.KerasLayer, with or without tf.distribute.

Run by tests/test_keras_distribute.py, one process per run (a strategy's
devices must be set up before TensorFlow initializes, and each
MultiWorkerMirroredStrategy worker is its own process)::

  python keras_distribute_worker.py STRATEGY MODEL_DIR OUT_NPZ

STRATEGY is ``single``, ``mirrored`` (two logical CPU devices) or
``multi_worker`` (``TF_CONFIG`` names the cluster and this worker). The
Keras flavour is the running one (``TF_USE_LEGACY_KERAS=1`` picks tf_keras
on TF 2.21). The final weights, the loss history and what ``load()`` passed
as ``LoadOptions.experimental_io_device`` go to OUT_NPZ.

:func:`save_tiny_model` writes the SavedModel the runs fine-tune: two dense
layers without batch statistics (so per-replica batches give the same
gradients as one big batch), a ``training`` argument that changes the
output, and one regularization loss.
"""
from __future__ import annotations

import sys

import numpy as np

GLOBAL_BATCH = 8
EPOCHS = 3
LEARNING_RATE = 0.1


def save_tiny_model(path: str) -> None:
  """Writes the tiny reusable TF2 SavedModel to ``path``."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  w1 = tf.Variable(tf.random.stateless_normal([4, 6], seed=[1, 2]) * 0.5,
                   name="dense1/kernel")
  b1 = tf.Variable(tf.zeros([6]), name="dense1/bias")
  w2 = tf.Variable(tf.random.stateless_normal([6, 3], seed=[3, 4]) * 0.5,
                   name="dense2/kernel")

  @tf.function
  def call(x, training=False):
    hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
    if training:
      hidden = hidden * 0.5
    return tf.matmul(hidden, w2)

  root = tf.train.Checkpoint()
  root.__call__ = call
  root.variables = [w1, b1, w2]
  root.trainable_variables = [w1, b1, w2]
  root.regularization_losses = [tf.function(
      lambda: 0.01 * tf.reduce_sum(tf.square(w1)), input_signature=[])]
  for training in (True, False):
    call.get_concrete_function(tf.TensorSpec([None, 4], tf.float32),
                               training=training)
  tf.saved_model.save(root, path)


def data():
  x = np.random.RandomState(0).rand(32, 4).astype("float32")
  y = np.random.RandomState(1).rand(32, 2).astype("float32")
  return x, y


def _strategy(name: str, tf):
  if name == "single":
    return None
  if name == "mirrored":
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  if name == "multi_worker":
    return tf.distribute.MultiWorkerMirroredStrategy()
  raise ValueError(f"unknown strategy {name!r}")


def main(argv) -> int:
  strategy_name, model_dir, out = argv[1:4]
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if strategy_name == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  import hub_adapter as hub  # pylint: disable=g-import-not-at-top
  from hub_adapter import runtime  # pylint: disable=g-import-not-at-top

  # A pass-through recorder: which LoadOptions did load() pick by itself?
  io_devices = []
  real_load = tf.saved_model.load

  def recording_load(export_dir, tags=None, options=None):
    io_devices.append(getattr(options, "experimental_io_device", None))
    return real_load(export_dir, tags=tags, options=options)

  tf.saved_model.load = recording_load

  keras = runtime.keras_module()
  strategy = _strategy(strategy_name, tf)
  scope = strategy.scope() if strategy is not None else _null()
  with scope:
    layer = hub.KerasLayer(model_dir, trainable=True)
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(
        2, kernel_initializer=keras.initializers.Constant(0.1))(
            layer(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss="mse")
  x, y = data()
  dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
  if strategy_name == "multi_worker":
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA)
    dataset = dataset.with_options(options)
  history = model.fit(dataset, epochs=EPOCHS, verbose=0)
  np.savez(
      out, *[np.array(w.numpy()) for w in model.weights],
      loss=np.array(history.history["loss"]),
      io_devices=np.array([str(d) for d in io_devices]),
      variable_type=np.array(
          type(layer.resolved_object.variables[0]).__name__),
      flavour=np.array(runtime.keras_flavour()))
  return 0


class _null:

  def __enter__(self):
    return None

  def __exit__(self, *args):
    return False


if __name__ == "__main__":
  sys.exit(main(sys.argv))
