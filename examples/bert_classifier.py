"""Fine-tune a BERT-style encoder on raw text: preprocess -> encoder -> Dense.

The preprocessor uses tensorflow_text ops; hub_adapter imports the library
by itself (no `import tensorflow_text` here). Works under Keras 3, tf_keras
(TF_USE_LEGACY_KERAS=1) and TF 2.15's Keras 2.

  python examples/bert_classifier.py PREPROCESS ENCODER
"""
import sys

import numpy as np
import tensorflow as tf

import hub_adapter as hub
from hub_adapter import runtime


def main(preprocess_handle: str, encoder_handle: str) -> None:
  keras = runtime.keras_module()
  keras.utils.set_random_seed(0)
  sentences = np.array(["the cat sat on the mat", "a dog is playing",
                        "the model is good", "hub text tokenize",
                        "unlikely dogs and cats", "the mat is good!"],
                       dtype=object)
  labels = np.array([0, 1, 0, 1, 1, 0])

  # --- README: Real models / BERT ---
  preprocess = hub.KerasLayer(preprocess_handle)            # strings -> dict
  encoder = hub.KerasLayer(encoder_handle, trainable=True)  # dict -> dict
  text = keras.Input(shape=(), dtype=tf.string)
  outputs = encoder(preprocess(text))  # pooled_output, sequence_output, ...
  logits = keras.layers.Dense(2)(outputs["pooled_output"])
  model = keras.Model(text, logits)
  model.compile(optimizer=keras.optimizers.Adam(0.01),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  history = model.fit(sentences, labels, epochs=20, batch_size=6, verbose=0)

  preprocessor = hub.load(preprocess_handle)  # other functions pass through
  tokens = preprocessor.tokenize(tf.constant(["the cats played"]))
  packed = preprocessor.bert_pack_inputs([tokens], tf.constant(16))
  # --- end ---

  losses = history.history["loss"]
  print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}")
  print(f"encoder weights: {len(encoder.trainable_weights)} trainable")
  print(f"tokenize: {tokens.to_list()}")
  print(f"bert_pack_inputs: {sorted(packed)}")


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
