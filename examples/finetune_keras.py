"""Fine-tune a TF2 SavedModel with hub_adapter.KerasLayer in Model.fit.

Works under Keras 3 (TF >= 2.16), tf_keras (TF_USE_LEGACY_KERAS=1) and
TF 2.15's Keras 2.

  python examples/finetune_keras.py PATH_OR_HANDLE
"""
import sys

import numpy as np

import hub_adapter as hub
from hub_adapter import runtime


def main(handle: str) -> None:
  keras = runtime.keras_module()
  keras.utils.set_random_seed(0)
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(64, 8, 8, 3)).astype("float32")
  labels = (images[..., 0].mean(axis=(1, 2)) > 0.5).astype("int32")
  model = keras.Sequential([
      keras.Input(shape=(8, 8, 3)),
      hub.KerasLayer(handle, trainable=True),
      keras.layers.Dense(2),
  ])
  model.compile(optimizer=keras.optimizers.SGD(0.1),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  history = model.fit(images, labels, epochs=10, batch_size=8, verbose=0)
  losses = history.history["loss"]
  print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
  print(f"regularization losses in model.losses: {len(model.losses)}")


if __name__ == "__main__":
  main(sys.argv[1])
