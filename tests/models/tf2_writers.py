"""Writes the four classic TF2 SavedModel test models (TensorFlow 2.21).

- ``tf2_image_bn_reusable``: a "reusable SavedModel" written from a
  ``tf.Module``: ``__call__(inputs, training=False)`` traced for both
  training values, batch norm whose moving statistics move only when
  ``training=True``, seeded stateless dropout, the ``variables`` /
  ``trainable_variables`` / ``regularization_losses`` attributes and a
  ``serving_default`` signature.
- ``tf2_signatures_only``: signatures only, written by Keras 3
  ``keras.export.ExportArchive`` (what ``model.export()`` uses) with the
  endpoints ``serve`` and ``embed``.
- ``tf2_text_vocab_asset``: string input, ``assets/vocab.txt`` read by a
  ``tf.lookup.StaticHashTable`` through a ``TextFileInitializer``.
- ``tf2_keras_savedmodel``: a tf_keras 2.21 model saved with
  ``model.save(path, save_format="tf")`` (``keras_metadata.pb``).

Each ``write_*`` function writes one model folder and returns the parts of
its manifest entry that are known before the model is loaded again
(description, provenance, and facts such as the batch norm momentum). Every
other field is read back from the written model by ``tf2_goldens``.
Weights come from fixed numpy seeds, so the models are the same on every
build.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List

import numpy as np

PROVENANCE = ("Made with TensorFlow 2.21.0 (tensorflow-hub 0.16.1, Keras 3.15, "
              "tf_keras 2.21) in eager mode by tests/models/tf2_writers.py.")

IMAGE_SHAPE = (8, 8, 3)
IMAGE_CLASSES = 5
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-3
IMAGE_DROPOUT_RATE = 0.25
IMAGE_DROPOUT_SEED = (7, 11)
IMAGE_L2 = (0.01, 0.005)  # conv1/kernel, head/kernel

TEXT_VOCABULARY = ("<unk>", "the", "a", "cat", "dog", "sat", "on", "mat",
                   "runs", "fast", "slow", "red", "blue", "big", "small",
                   "hub", "model", "text", "is", "and")
TEXT_DIM = 8

KERAS_INPUT_DIM = 6
KERAS_L2 = 0.01


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _normal(rng: np.random.RandomState, shape, scale: float = 0.5):
  """Seeded float32 weights."""
  return (rng.standard_normal(shape) * scale).astype(np.float32)


def _positive(rng: np.random.RandomState, shape):
  """Seeded float32 values in [0.5, 1.5) (scales, variances)."""
  return rng.uniform(0.5, 1.5, shape).astype(np.float32)


def write_vocabulary(path: str, tokens) -> None:
  """Writes one token a line, UTF-8, with a final newline.

  Args:
    path: the file to write.
    tokens: the tokens, in id order.
  """
  with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(tokens) + "\n")


# -- tf2_image_bn_reusable ----------------------------------------------------

def _image_module_class():
  """Defines the tf.Module class of the reusable image model."""
  tf = _tf()

  class ReusableImageModel(tf.Module):
    """conv1 -> bn1 -> relu -> mean pool -> dropout (training) -> head.

    The class attributes below shadow tf.Module's read-only properties so
    the instance can hold the saved ``variables`` and
    ``trainable_variables`` lists of the reusable SavedModel convention.
    """
    variables = None
    trainable_variables = None

    def __init__(self, rng: np.random.RandomState):
      super().__init__(name="image_bn_reusable")
      conv_kernel = tf.Variable(_normal(rng, (3, 3, 3, 4)),
                                name="conv1/kernel")
      gamma = tf.Variable(_positive(rng, (4,)), name="bn1/gamma")
      beta = tf.Variable(_normal(rng, (4,), 0.2), name="bn1/beta")
      head_kernel = tf.Variable(_normal(rng, (4, IMAGE_CLASSES)),
                                name="head/kernel")
      head_bias = tf.Variable(_normal(rng, (IMAGE_CLASSES,), 0.1),
                              name="head/bias")
      moving_mean = tf.Variable(_normal(rng, (4,), 0.1),
                                trainable=False, name="bn1/moving_mean")
      moving_variance = tf.Variable(_positive(rng, (4,)), trainable=False,
                                    name="bn1/moving_variance")
      # Assigned first, so checkpoint keys are variables/0 ... variables/6.
      self.variables = [conv_kernel, gamma, beta, head_kernel, head_bias,
                        moving_mean, moving_variance]
      self.trainable_variables = self.variables[:5]
      self.regularization_losses = [
          tf.function(lambda: IMAGE_L2[0] * tf.reduce_sum(
              tf.square(conv_kernel)), input_signature=[]),
          tf.function(lambda: IMAGE_L2[1] * tf.reduce_sum(
              tf.square(head_kernel)), input_signature=[]),
      ]

    def _forward(self, images, training: bool):
      (conv_kernel, gamma, beta, head_kernel, head_bias, moving_mean,
       moving_variance) = self.variables
      features = tf.nn.conv2d(images, conv_kernel, strides=1, padding="SAME")
      if training:
        mean, variance = tf.nn.moments(features, axes=[0, 1, 2])
        decay = 1.0 - BATCH_NORM_MOMENTUM
        moving_mean.assign_sub(decay * (moving_mean - mean))
        moving_variance.assign_sub(decay * (moving_variance - variance))
      else:
        mean, variance = moving_mean, moving_variance
      features = tf.nn.batch_normalization(features, mean, variance, beta,
                                           gamma, BATCH_NORM_EPSILON)
      pooled = tf.reduce_mean(tf.nn.relu(features), axis=[1, 2])
      if training:
        pooled = tf.nn.experimental.stateless_dropout(
            pooled, rate=IMAGE_DROPOUT_RATE, seed=IMAGE_DROPOUT_SEED)
      return tf.matmul(pooled, head_kernel) + head_bias

    @tf.function
    def __call__(self, inputs, training=False):
      return self._forward(inputs, training)

  return ReusableImageModel


def write_image_bn_reusable(folder: str) -> Dict[str, Any]:
  """Writes ``tf2_image_bn_reusable`` with ``tf.saved_model.save``.

  Args:
    folder: the model folder to create.

  Returns:
    The static part of its manifest entry.
  """
  tf = _tf()
  model = _image_module_class()(np.random.RandomState(101))
  spec = tf.TensorSpec((None,) + IMAGE_SHAPE, tf.float32, name="inputs")
  for training in (False, True):
    model.__call__.get_concrete_function(spec, training=training)

  @tf.function(input_signature=[
      tf.TensorSpec((None,) + IMAGE_SHAPE, tf.float32, name="images")])
  def serve(images):
    # A local function: only the signature holds it, as in the exports of
    # TF Hub's reusable SavedModels.
    return {"feature_vector": model(images, training=False)}

  tf.saved_model.save(model, folder, signatures={"serving_default": serve})
  return {
      "kind": "tf2_image",
      "description": (
          "Reusable TF2 SavedModel (image-like): __call__(inputs, "
          "training=False) traced for training=True/False; batch norm whose "
          "moving statistics are updated only when training=True; seeded "
          "stateless dropout; variables / trainable_variables / "
          "regularization_losses attributes; plus a serving_default "
          "signature."),
      "batch_norm_momentum": BATCH_NORM_MOMENTUM,
      "moving_statistics": ["bn1/moving_mean:0", "bn1/moving_variance:0"],
  }


# -- tf2_signatures_only ------------------------------------------------------

def write_signatures_only(folder: str) -> Dict[str, Any]:
  """Writes ``tf2_signatures_only`` with Keras 3 ``ExportArchive``.

  Args:
    folder: the model folder to create.

  Returns:
    The static part of its manifest entry.
  """
  tf = _tf()
  import keras  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(202)
  features = keras.Input((4,), name="features")
  context = keras.Input((2,), name="context")
  joined = keras.layers.Concatenate(name="join")([features, context])
  hidden_layer = keras.layers.Dense(5, activation="tanh", name="hidden")
  logits_layer = keras.layers.Dense(3, name="logits")
  hidden = hidden_layer(joined)
  logits = logits_layer(hidden)
  inputs = {"features": features, "context": context}
  classifier = keras.Model(inputs, {
      "logits": logits,
      "probabilities": keras.layers.Softmax(name="probabilities")(logits)},
                           name="classifier")
  embedder = keras.Model(inputs, hidden, name="embedder")
  hidden_layer.set_weights([_normal(rng, (6, 5)), _normal(rng, (5,), 0.1)])
  logits_layer.set_weights([_normal(rng, (5, 3)), _normal(rng, (3,), 0.1)])

  input_signature = [{
      "features": tf.TensorSpec((None, 4), tf.float32, name="features"),
      "context": tf.TensorSpec((None, 2), tf.float32, name="context")}]
  archive = keras.export.ExportArchive()
  archive.track(classifier)
  archive.add_endpoint(
      "serve", lambda inputs: classifier(inputs, training=False),
      input_signature=input_signature)
  archive.add_endpoint(
      "embed", lambda inputs: {"embedding": embedder(inputs, training=False)},
      input_signature=input_signature)
  archive.write_out(folder, verbose=False)
  return {
      "kind": "tf2_signatures",
      "description": (
          "SavedModel with only signatures (no __call__), dict inputs and "
          "dict outputs, as written by Keras 3 model.export()/ExportArchive "
          "or by TF-Serving-style exporters."),
      "exporter": ("keras.export.ExportArchive (Keras 3, as model.export() "
                   "does) with endpoints 'serve' and 'embed'"),
  }


# -- tf2_text_vocab_asset -----------------------------------------------------

def _text_module_class():
  """Defines the tf.Module class of the text embedding model."""
  tf = _tf()

  class TextEmbeddingModel(tf.Module):
    """Lower-case, drop punctuation, split, look up, sqrtn-combine."""
    variables = None
    trainable_variables = None

    def __init__(self, vocab_path: str, rng: np.random.RandomState):
      super().__init__(name="text_vocab_asset")
      self.vocab_file = tf.saved_model.Asset(vocab_path)
      self.table = tf.lookup.StaticHashTable(
          tf.lookup.TextFileInitializer(
              self.vocab_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
              tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
          default_value=0)
      # Assigned before `variables`, so its checkpoint key is embeddings/.
      self.embeddings = tf.Variable(
          _normal(rng, (len(TEXT_VOCABULARY), TEXT_DIM)), name="embeddings")
      self.variables = [self.embeddings]
      self.trainable_variables = [self.embeddings]
      self.regularization_losses = []

    def embed(self, sentences):
      cleaned = tf.strings.regex_replace(tf.strings.lower(sentences),
                                         r"[[:punct:]]", " ")
      words = tf.strings.split(cleaned)
      ids = self.table.lookup(words)
      vectors = tf.gather(self.embeddings, ids.flat_values)
      sums = tf.math.unsorted_segment_sum(
          vectors, ids.value_rowids(), num_segments=ids.nrows())
      counts = tf.cast(tf.maximum(ids.row_lengths(), 1), tf.float32)
      return sums / tf.sqrt(counts)[:, None]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences):
      return self.embed(sentences)

  return TextEmbeddingModel


def write_text_vocab_asset(folder: str, scratch: str) -> Dict[str, Any]:
  """Writes ``tf2_text_vocab_asset`` with ``tf.saved_model.save``.

  Args:
    folder: the model folder to create.
    scratch: a folder for the vocabulary file before it is copied in as an
      asset.

  Returns:
    The static part of its manifest entry.
  """
  tf = _tf()
  vocab_path = os.path.join(scratch, "vocab.txt")
  write_vocabulary(vocab_path, TEXT_VOCABULARY)
  model = _text_module_class()(vocab_path, np.random.RandomState(303))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name="sentences")])
  def serve(sentences):
    return {"embedding": model(sentences)}

  tf.saved_model.save(model, folder, signatures={"serving_default": serve})
  return {
      "kind": "tf2_text",
      "description": (
          "TF2 text model: 1-D string input, vocabulary file as a SavedModel "
          "asset feeding tf.lookup.StaticHashTable(TextFileInitializer); "
          "__call__ without a training argument, trainable embedding, "
          "serving_default signature."),
      "vocab_size": len(TEXT_VOCABULARY),
  }


# -- tf2_keras_savedmodel -----------------------------------------------------

def write_keras_savedmodel(folder: str) -> Dict[str, Any]:
  """Writes ``tf2_keras_savedmodel`` with tf_keras ``model.save``.

  Args:
    folder: the model folder to create.

  Returns:
    The static part of its manifest entry.
  """
  import tf_keras  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(404)
  layers = tf_keras.layers
  inputs = tf_keras.Input((KERAS_INPUT_DIM,), name="x")
  dense = layers.Dense(8, activation="relu", name="dense_a",
                       kernel_regularizer=tf_keras.regularizers.L2(KERAS_L2))
  norm = layers.BatchNormalization(name="bn")
  head = layers.Dense(3, name="head")
  outputs = head(layers.Dropout(0.5, name="drop")(norm(dense(inputs))))
  model = tf_keras.Model(inputs, outputs, name="keras_model")
  dense.set_weights([_normal(rng, (KERAS_INPUT_DIM, 8)),
                     _normal(rng, (8,), 0.1)])
  # A non-zero beta keeps outputs of constant batches away from zero, so
  # that dropout visibly changes them when training.
  norm.set_weights([_positive(rng, (8,)), _normal(rng, (8,), 0.3),
                    _normal(rng, (8,), 0.1), _positive(rng, (8,))])
  head.set_weights([_normal(rng, (8, 3)), _normal(rng, (3,), 0.1)])
  model.save(folder, save_format="tf")
  return {
      "kind": "tf2_keras",
      "description": (
          "Keras 2 (tf_keras) model saved with model.save(path, "
          "save_format='tf'): Dense(L2) + BatchNormalization + Dropout + "
          "Dense; keras_metadata.pb, __call__ and serving_default."),
      "keras_metadata": True,
      "moving_statistics": ["bn/moving_mean:0", "bn/moving_variance:0"],
  }


WRITERS: Dict[str, Callable[..., Dict[str, Any]]] = {
    "tf2_image_bn_reusable": write_image_bn_reusable,
    "tf2_signatures_only": write_signatures_only,
    "tf2_text_vocab_asset": write_text_vocab_asset,
    "tf2_keras_savedmodel": write_keras_savedmodel,
}
"""Fixture name -> writer. Writers taking ``scratch`` get a private folder."""

NEEDS_SCRATCH: List[str] = ["tf2_text_vocab_asset"]
