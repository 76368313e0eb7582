"""Convert a TF 1.x-era TF1 Hub module and fine-tune it in TF2.

The module may hold reference variables and v1 control flow (dynamic_rnn,
tf.cond); the converted SavedModel fine-tunes with a GradientTape or
KerasLayer(trainable=True) like any TF2 SavedModel.

  python examples/convert_tf1_module.py MODULE OUT_DIR
"""
import sys

import numpy as np
import tensorflow as tf

import hub_adapter as hub


def main(module: str, out_dir: str) -> None:
  sentences = tf.constant(["the cat sat on the mat", "a small bird flew",
                           "big dog"])

  # --- README: Real models / TF1 module ---
  hub.convert(module, out_dir)  # or: hub-adapter convert MODULE OUT_DIR
  model = hub.load(out_dir, trainable=True)
  losses = []
  for _ in range(5):
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(model(sentences, training=True)))
      loss += tf.add_n([f() for f in model.regularization_losses])
    grads = tape.gradient(loss, model.trainable_variables)
    for variable, grad in zip(model.trainable_variables, grads):
      variable.assign_sub(0.5 * tf.convert_to_tensor(grad))  # plain SGD
    losses.append(float(loss))
  # --- end ---

  same = np.allclose(hub.load(out_dir)(sentences),  # a fresh, untrained copy
                     hub.load(module)(sentences), atol=1e-5)
  print(f"converted outputs equal the module's: {same}")
  print(f"loss {losses[0]:.6f} -> {losses[-1]:.6f}")
  print(f"trainable variables: {len(model.trainable_variables)}")


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
