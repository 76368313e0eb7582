"""Fine-tunes one model the same way on whichever Keras backend runs.

Run by tests/keras_layers/test_jax_backend.py in a fresh process per
backend, since Keras picks its backend once per process from
``KERAS_BACKEND``:

    KERAS_BACKEND=tensorflow python jax_backend_worker.py MODEL_DIR OUT.npz

MODEL_DIR takes [batch, 8, 8, 3] images (``tf2_image_bn_reusable``). For
``jit_compile`` False and True it builds ``Input -> KerasLayer(MODEL_DIR,
trainable=True) -> Dense(2)`` with fixed initial weights, records the
outputs of ``model(x, training=False)`` and the regularization losses after
a call, fits 2 epochs of 2 batches with SGD (no shuffling), and writes the
loss history and every weight (the SavedModel's, in layer order, then the
head's) to OUT.npz, keys prefixed ``jit0/`` and ``jit1/``.
"""
import os
import sys

import numpy as np


def run(model_dir: str, jit_compile: bool) -> dict:
  """One fine-tuning run; returns named numpy arrays."""
  import keras  # pylint: disable=g-import-not-at-top
  import hub_adapter as hub  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  layer = hub.KerasLayer(model_dir, trainable=True)
  rs = np.random.RandomState(0)
  x = rs.rand(16, 8, 8, 3).astype("float32")
  y = rs.rand(16, 2).astype("float32")
  model = keras.Sequential([
      keras.Input((8, 8, 3)), layer,
      keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant(
          0.1))])
  model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse",
                jit_compile=jit_compile)
  out = {"infer": keras.ops.convert_to_numpy(model(x[:4], training=False))}
  model(x[:4], training=False)
  out["reg_losses"] = np.array(
      [float(keras.ops.convert_to_numpy(l)) for l in model.losses])
  history = model.fit(x, y, epochs=2, batch_size=8, shuffle=False,
                      verbose=0)
  out["loss"] = np.array(history.history["loss"])
  for k, weight in enumerate(model.weights):
    out[f"weight{k}:{weight.name}"] = keras.ops.convert_to_numpy(weight)
  return out


def main(argv):
  model_dir, out_path = argv[1], argv[2]
  results = {}
  for jit_compile in (False, True):
    for key, value in run(model_dir, jit_compile).items():
      results[f"jit{int(jit_compile)}/{key}"] = value
  np.savez(out_path, **results)
  import keras  # pylint: disable=g-import-not-at-top
  print(f"backend {keras.backend.backend()}: wrote {len(results)} arrays")


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  main(sys.argv)
