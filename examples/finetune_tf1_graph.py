"""Fine-tune a TF1 Hub module in TF1 compat mode, the way hub.Module did.

  python examples/finetune_tf1_graph.py PATH_OR_HANDLE

The module is applied with its {"train"} graph (batch norm in training mode,
dropout) when training=True; its UPDATE_OPS and REGULARIZATION_LOSSES join
this graph's collections.
"""
import sys

import numpy as np
import tensorflow as tf

tf.compat.v1.disable_v2_behavior()

import hub_adapter as hub  # pylint: disable=g-import-not-at-top,wrong-import-position


def main(handle: str) -> None:
  images = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3])
  model = hub.load(handle, trainable=True)
  features = model(images, training=True)
  # get_regularization_loss() is their sum, or 0.0 for a model without any.
  loss = (tf.reduce_mean(tf.square(features))
          + tf.compat.v1.losses.get_regularization_loss())
  update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
  with tf.control_dependencies(update_ops):
    train_op = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
  batch = np.random.default_rng(0).uniform(size=(4, 8, 8, 3))
  with tf.compat.v1.Session() as session:
    session.run([tf.compat.v1.global_variables_initializer(),
                 tf.compat.v1.tables_initializer()])
    losses = [session.run([loss, train_op], {images: batch})[0]
              for _ in range(5)]
  print(f"update ops: {len(update_ops)}, "
        f"regularization losses: "
        f"{len(tf.compat.v1.losses.get_regularization_losses())}")
  print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")


if __name__ == "__main__":
  main(sys.argv[1])
