"""Create a TF1 Hub module with the tensorflow_hub 0.15 API, on any TF.

  python examples/create_tf1_module.py OUTPUT_DIR

The result loads with hub_adapter (both modes), with tensorflow_hub 0.15's
hub.Module, and with hub.load in TF2.
"""
import sys

import tensorflow as tf

tf.compat.v1.disable_v2_behavior()

import hub_adapter as hub  # pylint: disable=g-import-not-at-top,wrong-import-position


def module_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
  w = tf.compat.v1.get_variable(
      "w", [3, 2], initializer=tf.compat.v1.glorot_uniform_initializer(seed=1))
  hub.add_signature(inputs={"x": x}, outputs={"default": tf.matmul(x, w)})


def main(output_dir: str) -> None:
  spec = hub.create_module_spec(module_fn)
  module = hub.Module(spec)
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    module.export(output_dir, session)
  print(f"exported to {output_dir}; signatures: "
        f"{hub.load_module_spec(output_dir).get_signature_names()}")


if __name__ == "__main__":
  main(sys.argv[1])
