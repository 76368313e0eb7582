"""A TF1 Hub module built with hub_adapter's creation API, for tests.

The same ``module_fn`` serves the creation, writer and interop tests, and
``interop_check.py`` (run by another interpreter) reads the inputs written by
:func:`write_inputs`. It covers what real TF1 Hub modules use:

- two graph variants: ``{"train"}`` (batch norm on batch statistics with
  UPDATE_OPS for the moving statistics, dropout) and the empty tag set
  (moving statistics, no dropout);
- two signatures: ``default`` (images -> logits) and ``features`` with dict
  inputs ``images`` and ``text`` and dict outputs;
- a plain conv kernel with an L2 regularizer, and a partitioned embedding;
- a lookup table reading the asset ``vocab.txt`` (text input);
- two attached messages: ``image_module_info`` (an ``ImageModuleInfo``) and
  ``label_info`` (a ``tf.train.Example`` with the class names).

Only graph ops that TF 2.15 and TF 2.21 both know are used (no Keras), so a
module created on one stack loads on the other.
"""
from __future__ import annotations

import os

import numpy as np

VOCAB = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"]
LABELS = ["cat", "dog", "bird", "fish", "horse"]
IMAGE_SIZE = 6
FEATURES = 4
CLASSES = 5
DROPOUT_RATE = 0.5
MOMENTUM = 0.9
L2 = 0.01
TAGS_AND_ARGS = [({"train"}, {"training": True}), (set(), {"training": False})]
# Per signature, the outputs whose values do not depend on dropout.
DETERMINISTIC = {"default": {"default": False},
                 "features": {"features": True, "dropped": False,
                              "text_embedding": True, "logits": False}}
MOVING = ("bn/moving_mean", "bn/moving_variance")


def write_vocab(folder: str, name: str = "vocab.txt") -> str:
  """Writes the vocabulary file and returns its path."""
  path = os.path.join(folder, name)
  with open(path, "w") as f:
    f.write("\n".join(VOCAB) + "\n")
  return path


def inputs() -> dict:
  """The inputs both sides feed: numpy arrays (strings as bytes)."""
  rng = np.random.RandomState(7)
  return {
      "images": rng.uniform(size=(3, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(
          np.float32),
      "text": np.array([b"the quick fox", b"lazy dog jumps over", b"zebra",
                        b""], dtype=object),
  }


def write_inputs(path: str) -> str:
  arrays = inputs()
  np.savez(path, images=arrays["images"],
           text=np.array([t.decode() for t in arrays["text"]]))
  return path


def read_inputs(path: str) -> dict:
  with np.load(path, allow_pickle=False) as data:
    return {"images": data["images"],
            "text": np.char.encode(data["text"], "utf-8").astype(object)}


def make_module_fn(vocab_path: str, creation):
  """Returns ``module_fn(training)`` using ``creation``'s add_signature and
  attach_message (hub_adapter's or tensorflow_hub's)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def module_fn(training: bool = False):
    v1 = tf.compat.v1
    images = v1.placeholder(tf.float32, [None, IMAGE_SIZE, IMAGE_SIZE, 3],
                            name="images")
    kernel = v1.get_variable(
        "conv/kernel", [3, 3, 3, FEATURES],
        initializer=v1.glorot_uniform_initializer(),
        regularizer=lambda w: L2 * tf.nn.l2_loss(w))
    net = tf.nn.conv2d(images, kernel, strides=[1, 1, 1, 1], padding="SAME")
    gamma = v1.get_variable("bn/gamma", [FEATURES],
                            initializer=v1.random_uniform_initializer(0.5, 1.5))
    beta = v1.get_variable("bn/beta", [FEATURES],
                           initializer=v1.random_uniform_initializer(-.1, .1))
    moving_mean = v1.get_variable("bn/moving_mean", [FEATURES],
                                  initializer=v1.zeros_initializer(),
                                  trainable=False)
    moving_var = v1.get_variable("bn/moving_variance", [FEATURES],
                                 initializer=v1.ones_initializer(),
                                 trainable=False)
    if training:
      mean, variance = tf.nn.moments(net, axes=[0, 1, 2])
      for var, value in ((moving_mean, mean), (moving_var, variance)):
        v1.add_to_collection(
            v1.GraphKeys.UPDATE_OPS,
            v1.assign_sub(var, (1.0 - MOMENTUM) * (var - value)))
    else:
      mean, variance = moving_mean, moving_var
    net = tf.nn.batch_normalization(net, mean, variance, beta, gamma, 1e-3)
    features = tf.reduce_mean(tf.nn.relu(net), axis=[1, 2], name="features")
    dropped = (v1.nn.dropout(features, rate=DROPOUT_RATE) if training
               else tf.identity(features))
    logits_kernel = v1.get_variable("logits/kernel", [FEATURES, CLASSES])
    logits_bias = v1.get_variable("logits/bias", [CLASSES],
                                  initializer=v1.zeros_initializer())
    logits = tf.matmul(dropped, logits_kernel) + logits_bias

    text = v1.placeholder(tf.string, [None], name="text")
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.TextFileInitializer(
            vocab_path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
        num_oov_buckets=1)
    tokens = v1.string_split(text, sep=" ")
    ids = tf.SparseTensor(tokens.indices, table.lookup(tokens.values),
                          tokens.dense_shape)
    embeddings = v1.get_variable(
        "embeddings", [len(VOCAB) + 1, FEATURES],
        partitioner=v1.fixed_size_partitioner(2))
    text_embedding = v1.nn.safe_embedding_lookup_sparse(
        embeddings, ids, combiner="sqrtn")

    creation.add_signature(inputs=images, outputs=logits)
    creation.add_signature(
        "features", inputs={"images": images, "text": text},
        outputs={"features": features, "dropped": dropped,
                 "text_embedding": text_embedding, "logits": logits})
    creation.attach_message("image_module_info", _image_module_info())
    creation.attach_message("label_info", label_info())

  return module_fn


def _image_module_info():
  from hub_adapter.tf1 import hub_protos  # pylint: disable=g-import-not-at-top
  info = hub_protos.ImageModuleInfo()
  info.default_image_size.height = IMAGE_SIZE
  info.default_image_size.width = IMAGE_SIZE
  return info


def label_info():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  example = tf.train.Example()
  example.features.feature["classes"].bytes_list.value.extend(
      [label.encode() for label in LABELS])
  return example


# Evaluation, shared by the in-process tests and interop_check.py --------------

def _full(value):
  return np.concatenate(value) if isinstance(value, list) else value


def evaluate_module(module_class, path: str, data: dict, tags) -> dict:
  """Applies both signatures with a ``hub.Module``-like class in graph mode.

  Works the same for ``tensorflow_hub.Module`` and ``hub_adapter.Module``.
  The train variant is made trainable, so its update ops and regularization
  losses are collected; the moving statistics after running one call's
  update ops once are recorded from a second graph, where only one call
  adds update ops.

  Returns:
    A dict of numpy arrays and counts: outputs per signature, variables,
    regularization losses, update op count, attached messages and (train
    variant) the moving statistics after one update.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf1 import hub_protos  # pylint: disable=g-import-not-at-top
  v1 = tf.compat.v1
  trainable = "train" in tags
  result = {}
  with tf.Graph().as_default():
    module = module_class(path, tags=set(tags), trainable=trainable)
    outputs = {
        "default": {"default": module(data["images"])},
        "features": module(dict(images=data["images"], text=data["text"]),
                           signature="features", as_dict=True)}
    losses = v1.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
    result["update_ops"] = len(v1.get_collection(v1.GraphKeys.UPDATE_OPS))
    info = module.get_attached_message("image_module_info",
                                       hub_protos.ImageModuleInfo)
    labels = module.get_attached_message("label_info", tf.train.Example)
    result["image_size"] = [info.default_image_size.height,
                            info.default_image_size.width]
    result["labels"] = [v.decode() for v in labels.features.feature[
        "classes"].bytes_list.value]
    with v1.Session() as session:
      session.run([v1.global_variables_initializer(),
                   v1.tables_initializer()])
      result["outputs"] = session.run(outputs)
      result["variables"] = {k: _full(v) for k, v in
                             session.run(module.variable_map).items()}
      result["regularization_losses"] = session.run(losses)
  if trainable:
    with tf.Graph().as_default():
      module = module_class(path, tags=set(tags), trainable=True)
      module(data["images"])
      updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
      with v1.Session() as session:
        session.run(v1.global_variables_initializer())
        session.run(updates)
        result["moving_after_update"] = session.run(
            {k: module.variable_map[k] for k in MOVING})
  return result


def evaluate_signatures(load_fn, path: str, data: dict, tags) -> dict:
  """Calls both signatures of ``load_fn(path, tags=...)`` in TF2 (hub.load).

  Returns:
    ``{"outputs": {signature: {output: numpy array}}}``.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  loaded = load_fn(path, tags=set(tags))
  images = tf.constant(data["images"])
  outputs = {
      "default": loaded.signatures["default"](default=images),
      "features": loaded.signatures["features"](
          images=images, text=tf.constant(list(data["text"]), tf.string))}
  return {"outputs": tf.nest.map_structure(lambda t: t.numpy(), outputs)}


def to_json(value):
  """Nested dicts/lists of numpy values -> JSON-ready Python values."""
  if isinstance(value, dict):
    return {k: to_json(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_json(v) for v in value]
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, np.generic):
    return value.item()
  return value
