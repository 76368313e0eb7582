"""The TF1 Hub modules the tests use: how each is built and what it holds.

Each module is described by a :class:`Recipe`: a ``module_fn`` written with
tensorflow_hub 0.15's creation API (``hub.add_signature`` and
``hub.attach_message`` inside ``hub.create_module_spec``), the graph variants
to build, seeded weights written into the variables before
``hub.Module.export``, the golden cases to record, and the manifest fields
that only the recipe knows (kind, description, what is special about it).

The seven modules:

- ``tf1_text_embedding``: 1-D sentences -> [batch, 8]; punctuation removal,
  lower-casing, whitespace split, a vocabulary asset with 2 OOV buckets, a
  partitioned embedding and a sqrtn combiner (like NNLM).
- ``tf1_image_feature_vector``: 8x8x3 images; ``{"train"}`` and ``set()``
  variants; conv, batch norm (UPDATE_OPS), dropout (train only), L2
  regularizers; four signatures, one with a batch-norm momentum hparam.
- ``tf1_tokens_signature_only``: only a ``tokens`` signature (like ELMo's),
  an in-graph lookup table, no assets.
- ``tf1_image_with_attachments``: images of unknown size and two attached
  messages (``ImageModuleInfo`` and a ``tf.train.Example``).
- ``half_plus_two_v1``: y = a * x + b with a = 0.5 and b = 2, input of
  unknown shape (the module of tensorflow_hub's own tests).
- ``tf1_refvar_lstm``: reference variables (``VariableV2``), v1 control
  flow (``dynamic_rnn`` with an LSTM cell, a ``tf.cond``), an in-graph word
  table and ``word_emb`` variable (like ELMo), dropout only in the train
  variant of its ``tokens`` signature.
- ``tf1_sparse_ragged_inputs``: a ``default`` signature taking a sparse
  placeholder and a ``ragged`` signature taking a ragged placeholder.

Nothing here imports TensorFlow at import time: the golden inputs and
manifest fields are plain numpy and Python, so the process that assembles
the manifest needs no TensorFlow.
"""
from __future__ import annotations

import dataclasses
import os
import types
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

PROVENANCE = ("Built by tests/models/tf1_hub.py with tensorflow-hub 0.15.0 on "
              "TensorFlow 2.15.1 in TF1 compat mode "
              "(tf.compat.v1.disable_v2_behavior()) via hub.create_module_spec "
              "+ hub.add_signature + hub.Module.export; weights are seeded "
              "random values written before the export.")

# The graph variants of modules with a training variant, as
# create_module_spec's tags_and_args.
TRAIN_AND_INFER = ((set(), {"training": False}),
                   ({"train"}, {"training": True}))


def import_hub() -> types.ModuleType:
  """Imports the real tensorflow_hub 0.15.

  tensorflow_hub imports ``pkg_resources``, which setuptools >= 81 no longer
  ships; hub_adapter's importer puts a stand-in in place for the import only.

  Returns:
    The ``tensorflow_hub`` module.

  Raises:
    ImportError: tensorflow_hub is not installed.
  """
  from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
  return import_tensorflow_hub()


@dataclasses.dataclass
class CaseSpec:
  """One golden case before it is recorded.

  Attributes:
    case_id: the case's ``id`` in the manifest.
    api: ``hub.Module``, ``hub.Module.update_ops`` or ``hub.load.signatures``.
    tags: the tag set of the graph variant.
    signature: the signature applied.
    inputs: the input arrays by name. A sparse or ragged input is given by
      its component arrays (see ``composite_inputs``).
    check: ``allclose`` or ``shape`` (random values: dropout is active).
    note: why the check is ``shape``, or other remarks.
    composite_inputs: for signatures with sparse or ragged inputs, the
      input name -> ``{"type", "dtype", "components": {part: array name}}``.
    state_variables: for ``hub.Module.update_ops``, the variables whose
      values after the update ops are recorded.
  """
  case_id: str
  api: str
  tags: Tuple[str, ...]
  signature: str
  inputs: Dict[str, np.ndarray]
  check: str = "allclose"
  note: Optional[str] = None
  composite_inputs: Optional[Dict[str, Dict[str, Any]]] = None
  state_variables: Tuple[str, ...] = ()

  @property
  def tf_mode(self) -> str:
    """``tf2_eager`` for hub.load cases, else ``tf1_compat``."""
    return "tf2_eager" if self.api == "hub.load.signatures" else "tf1_compat"


@dataclasses.dataclass
class FinetuneSpec:
  """The one fine-tuning step recorded with ``hub.Module(trainable=True)``.

  Attributes:
    signature: the signature applied.
    tags: the graph variant (the train one).
    input_name: the name the input is stored under (``finetune/in/NAME``).
    input_value: the batch fed.
    learning_rate: of ``GradientDescentOptimizer``.
  """
  signature: str
  tags: Tuple[str, ...]
  input_name: str
  input_value: np.ndarray
  learning_rate: float = 0.1


@dataclasses.dataclass
class Recipe:
  """How one TF1 Hub module is built and what is recorded for it.

  Attributes:
    name: the fixture name (folder, archive and golden file names).
    kind: the manifest's ``kind``.
    description: the manifest's ``description``.
    make_module_fn: ``make_module_fn(hub, work_dir) -> module_fn``; may write
      asset files into ``work_dir``.
    tags_and_args: passed to ``hub.create_module_spec`` (None: one variant).
    weights: ``weights(variable_shapes) -> {variable_map name: array}``, the
      values written before export (the full value of a partitioned one).
    cases: the golden cases.
    fields: extra manifest fields known in advance.
    dot_prefix: whether archive members start with ``./``.
    collections_signature: record UPDATE_OPS / REGULARIZATION_LOSSES counts
      of this signature for each tag set (None: not recorded).
    finetune: the fine-tuning step to record (None: not recorded).
    attached_message_keys: keys of messages attached with attach_message.
    image_helpers: record hub.get_expected_image_size / num channels.
    expect_reference_variables: the variables must be ``VariableV2`` ops.
    expect_v1_control_flow: the graph must use v1 control-flow ops.
  """
  name: str
  kind: str
  description: str
  make_module_fn: Callable[[Any, str], Callable[..., None]]
  weights: Callable[[Dict[str, Tuple[int, ...]]], Dict[str, np.ndarray]]
  cases: List[CaseSpec]
  tags_and_args: Optional[Sequence[Tuple[set, Dict[str, Any]]]] = None
  fields: Dict[str, Any] = dataclasses.field(default_factory=dict)
  dot_prefix: bool = True
  collections_signature: Optional[str] = None
  finetune: Optional[FinetuneSpec] = None
  attached_message_keys: Tuple[str, ...] = ()
  image_helpers: bool = False
  expect_reference_variables: bool = False
  expect_v1_control_flow: bool = False


def _seeded_normal(seed: int, scale: float
                   ) -> Callable[[Dict[str, Tuple[int, ...]]],
                                 Dict[str, np.ndarray]]:
  """Makes a ``Recipe.weights`` function drawing seeded normal values.

  Args:
    seed: the ``numpy.random.RandomState`` seed.
    scale: the standard deviation.

  Returns:
    ``weights(shapes)``: float32 values for each name, drawn in sorted-name
    order.
  """
  def weights(shapes):
    rng = np.random.RandomState(seed)
    return {name: (scale * rng.standard_normal(shapes[name])).astype(np.float32)
            for name in sorted(shapes)}
  return weights


SignatureInput = Tuple[str, str, Tuple[str, ...], Dict[str, np.ndarray]]


def _module_and_load_cases(
    signature_inputs: Sequence[SignatureInput],
    stochastic: Sequence[Tuple[Tuple[str, ...], str]] = (),
    note: Optional[str] = None) -> List[CaseSpec]:
  """Makes a ``hub.Module`` and a ``hub.load.signatures`` case per input.

  Args:
    signature_inputs: ``(suffix, signature, tags, inputs)``; the case ids are
      ``tf1_SUFFIX`` and ``tf2_hubload_SUFFIX``.
    stochastic: ``(tags, signature)`` pairs whose values are random.
    note: the note of the stochastic cases.

  Returns:
    The hub.Module cases, then the hub.load cases.
  """
  cases = []
  for api, prefix in (("hub.Module", "tf1_"),
                      ("hub.load.signatures", "tf2_hubload_")):
    for suffix, signature, tags, inputs in signature_inputs:
      random = (tuple(tags), signature) in stochastic
      cases.append(CaseSpec(
          case_id=prefix + suffix, api=api, tags=tuple(tags),
          signature=signature, inputs=dict(inputs),
          check="shape" if random else "allclose",
          note=note if random else None))
  return cases


# --- tf1_text_embedding -------------------------------------------------------
TEXT_VOCABULARY = ("a", "and", "big", "blue", "cat", "dog", "fast", "fish",
                   "green", "house", "is", "mat", "on", "red", "runs", "sat",
                   "slow", "small", "the", "tree")
TEXT_OOV_BUCKETS = 2
TEXT_DIM = 8


def _text_embedding_fn(hub, work_dir):
  """A module_fn like the NNLM text embeddings; writes ``tokens.txt``.

  Args:
    hub: the tensorflow_hub module.
    work_dir: a scratch folder for asset sources.

  Returns:
    The ``module_fn`` for ``hub.create_module_spec``.
  """
  vocabulary_file = os.path.join(work_dir, "tokens.txt")
  with open(vocabulary_file, "w") as f:
    f.write("".join(word + "\n" for word in TEXT_VOCABULARY))

  def module_fn():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    sentences = tf.compat.v1.placeholder(tf.string, [None], name="sentences")
    normalized = tf.strings.lower(
        tf.strings.regex_replace(sentences, "[[:punct:]]", " "))
    words = tf.compat.v1.string_split(normalized, sep=" ")
    # An empty sentence becomes one "" token, which hashes to an OOV bucket.
    words, _ = tf.sparse.fill_empty_rows(words, "")
    table = tf.compat.v1.lookup.StaticVocabularyTable(
        tf.compat.v1.lookup.TextFileInitializer(
            vocabulary_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
        num_oov_buckets=TEXT_OOV_BUCKETS)
    ids = table.lookup(words)
    embeddings = tf.compat.v1.get_variable(
        "embeddings", [len(TEXT_VOCABULARY) + TEXT_OOV_BUCKETS, TEXT_DIM],
        partitioner=tf.compat.v1.fixed_size_partitioner(2))
    combined = tf.nn.embedding_lookup_sparse(embeddings, ids, None,
                                             combiner="sqrtn")
    hub.add_signature(inputs={"sentences": sentences}, outputs=combined)
  return module_fn


def _text_embedding() -> Recipe:
  """Returns the recipe of ``tf1_text_embedding``."""
  sentences = [
      np.array(["The cat sat on the mat.", "", "unknownword dog",
                "Big, big TREE!", "a red fish runs fast"]),
      np.array(["", ""]),
      np.array(["house"]),
  ]
  return Recipe(
      name="tf1_text_embedding", kind="text",
      description=(
          "Text embedding module like the NNLM / examples/text_embeddings "
          "export: 1-D string input, punctuation removal + lower-casing + "
          "whitespace split, vocabulary asset + lookup table with OOV "
          "buckets, partitioned embedding variable, sqrtn combiner; only the "
          "empty tag set. An empty sentence gets the embedding of the OOV "
          "bucket of the empty string."),
      make_module_fn=_text_embedding_fn,
      weights=_seeded_normal(101, 0.5),
      cases=_module_and_load_cases(
          [(f"default_{i}", "default", (), {"sentences": s})
           for i, s in enumerate(sentences)]),
      fields={"assets": ["tokens.txt"], "embedding_dim": TEXT_DIM,
              "num_oov_buckets": TEXT_OOV_BUCKETS,
              "vocab_size": len(TEXT_VOCABULARY)})


# --- tf1_image_feature_vector -------------------------------------------------
IMAGE_SIGNATURES = ("default", "image_feature_vector", "image_classification",
                    "image_feature_vector_with_bn_hparams")
IMAGE_DROPOUT_NOTE = ("train graph applies seeded dropout: values are random, "
                      "check shape only")


def _l2(scale):
  """Makes an L2 kernel regularizer (layers add its loss to the collection).

  Args:
    scale: the factor of ``tf.nn.l2_loss``.

  Returns:
    The regularizer function.
  """
  def regularizer(weights):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    return scale * tf.nn.l2_loss(weights)
  return regularizer


def _image_feature_vector_fn(hub, work_dir):
  """A module_fn with conv, batch norm, dropout and four signatures.

  Args:
    hub: the tensorflow_hub module.
    work_dir: a scratch folder for asset sources.

  Returns:
    The ``module_fn`` for ``hub.create_module_spec`` (it takes ``training``).
  """
  del work_dir

  def module_fn(training):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    layers = tf.compat.v1.layers
    images = tf.compat.v1.placeholder(tf.float32, [None, 8, 8, 3],
                                      name="images")
    momentum = tf.compat.v1.placeholder_with_default(
        0.9, [], name="batch_norm_momentum")
    conv = layers.conv2d(images, 4, 3, padding="same", use_bias=False,
                         kernel_regularizer=_l2(1e-2), name="conv1")
    normalized = layers.batch_normalization(conv, momentum=momentum,
                                            training=training, fused=False,
                                            name="bn1")
    feature_map = tf.nn.relu(normalized)
    pre_logits = tf.reduce_mean(feature_map, axis=[1, 2], name="pre_logits")
    features = layers.dense(pre_logits, 6, kernel_regularizer=_l2(1e-2),
                            name="features")
    dropped = layers.dropout(features, rate=0.5, seed=42, training=training)
    logits = layers.dense(dropped, 5, name="logits")
    hub.add_signature(inputs=images, outputs=features)
    hub.add_signature("image_feature_vector", inputs={"images": images},
                      outputs={"default": features, "pre_logits": pre_logits,
                               "feature_map": feature_map})
    hub.add_signature("image_classification", inputs={"images": images},
                      outputs={"default": logits})
    hub.add_signature("image_feature_vector_with_bn_hparams",
                      inputs={"images": images,
                              "batch_norm_momentum": momentum},
                      outputs={"default": features, "pre_logits": pre_logits})
  return module_fn


def _image_feature_vector_weights(shapes):
  """Seeded weights with positive variances and gammas near 1.

  Args:
    shapes: full shapes by variable name.

  Returns:
    float32 values by variable name.
  """
  rng = np.random.RandomState(202)
  values = {}
  for name in sorted(shapes):
    shape = shapes[name]
    if name.endswith("gamma"):
      value = rng.uniform(0.8, 1.2, shape)
    elif name.endswith("moving_variance"):
      value = rng.uniform(0.5, 2.0, shape)
    elif name.endswith(("beta", "bias")):
      value = 0.1 * rng.standard_normal(shape)
    elif name.endswith("moving_mean"):
      value = 0.3 * rng.standard_normal(shape)
    else:
      value = 0.4 * rng.standard_normal(shape)
    values[name] = value.astype(np.float32)
  return values


def _image_feature_vector() -> Recipe:
  """Returns the recipe of ``tf1_image_feature_vector``."""
  images = np.random.RandomState(21).rand(3, 8, 8, 3).astype(np.float32)
  momentum = np.array(0.5, np.float32)
  signature_inputs = []
  for variant, tags in (("infer", ()), ("train", ("train",))):
    for signature in IMAGE_SIGNATURES:
      inputs = {"default" if signature == "default" else "images": images}
      if signature.endswith("bn_hparams"):
        inputs["batch_norm_momentum"] = momentum
      signature_inputs.append((f"{variant}_{signature}", signature, tags,
                               inputs))
  stochastic = [(("train",), "image_classification")]
  cases = _module_and_load_cases(signature_inputs, stochastic,
                                 IMAGE_DROPOUT_NOTE)
  update_case = CaseSpec(
      case_id="tf1_train_update_ops_image_feature_vector_with_bn_hparams",
      api="hub.Module.update_ops", tags=("train",),
      signature="image_feature_vector_with_bn_hparams",
      inputs={"images": images, "batch_norm_momentum": momentum},
      state_variables=("bn1/moving_mean", "bn1/moving_variance"))
  cases.insert(len(IMAGE_SIGNATURES) * 2, update_case)
  return Recipe(
      name="tf1_image_feature_vector", kind="image",
      description=(
          "Image feature-vector module with two graph variants (tags "
          "{'train'} and {}): conv + batch norm (UPDATE_OPS in the train "
          "graph) + dropout (train only) + L2 kernel regularizers "
          "(REGULARIZATION_LOSSES); signatures 'default', "
          "'image_feature_vector', 'image_classification' and "
          "'image_feature_vector_with_bn_hparams' (extra scalar "
          "batch_norm_momentum input)."),
      make_module_fn=_image_feature_vector_fn,
      tags_and_args=TRAIN_AND_INFER,
      weights=_image_feature_vector_weights,
      cases=cases,
      fields={
          "hparam_inputs": {"image_feature_vector_with_bn_hparams": {
              "batch_norm_momentum": {"default_value": 0.9}}},
          "stochastic": {"signature": "image_classification",
                         "tags": ["train"],
                         "why": "dropout is active in the train graph"},
      },
      collections_signature="default",
      finetune=FinetuneSpec(
          signature="default", tags=("train",), input_name="images",
          input_value=np.random.RandomState(22).rand(4, 8, 8, 3).astype(
              np.float32)))


# --- tf1_tokens_signature_only ------------------------------------------------
TOKENS_VOCABULARY = ("hello", "world", "good", "morning", "evening", "you",
                     "see", "soon", "thanks", "again", "and", "bye")


def _tokens_signature_only_fn(hub, work_dir):
  """A module_fn whose only signature is ``tokens`` (like ELMo's).

  Args:
    hub: the tensorflow_hub module.
    work_dir: a scratch folder for asset sources.

  Returns:
    The ``module_fn`` for ``hub.create_module_spec``.
  """
  del work_dir

  def module_fn():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tokens = tf.compat.v1.placeholder(tf.string, [None, None], name="tokens")
    sequence_len = tf.compat.v1.placeholder(tf.int32, [None],
                                            name="sequence_len")
    table = tf.compat.v1.lookup.StaticHashTable(
        tf.compat.v1.lookup.KeyValueTensorInitializer(
            list(TOKENS_VOCABULARY),
            np.arange(len(TOKENS_VOCABULARY), dtype=np.int64)),
        default_value=len(TOKENS_VOCABULARY))
    word_embeddings = tf.compat.v1.get_variable(
        "word_embeddings", [len(TOKENS_VOCABULARY) + 1, 4])
    word_emb = tf.nn.embedding_lookup(word_embeddings, table.lookup(tokens))
    mask = tf.sequence_mask(sequence_len, maxlen=tf.shape(tokens)[1],
                            dtype=tf.float32)
    projected = tf.compat.v1.layers.dense(word_emb, 5, activation=tf.tanh,
                                          name="proj")
    sequence_output = projected * tf.expand_dims(mask, -1)
    pooled = tf.reduce_sum(sequence_output, axis=1) / tf.maximum(
        tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
    hub.add_signature("tokens",
                      inputs={"tokens": tokens, "sequence_len": sequence_len},
                      outputs={"default": pooled, "word_emb": word_emb,
                               "sequence_output": sequence_output})
  return module_fn


def _tokens_signature_only() -> Recipe:
  """Returns the recipe of ``tf1_tokens_signature_only``."""
  inputs = [
      {"tokens": np.array([["hello", "world", ""],
                           ["good", "morning", "you"],
                           ["thanks", "", ""]]),
       "sequence_len": np.array([2, 3, 1], np.int32)},
      {"tokens": np.array([["see", "you", "soon", "unknown"]]),
       "sequence_len": np.array([4], np.int32)},
  ]
  return Recipe(
      name="tf1_tokens_signature_only", kind="tokens",
      description=(
          "Module whose only signature is 'tokens' (no 'default'): 2-D "
          "string tokens + int32 lengths in (ELMo-'tokens'-like), several "
          "outputs; in-graph KeyValueTensorInitializer table, no assets."),
      make_module_fn=_tokens_signature_only_fn,
      weights=_seeded_normal(303, 0.7),
      cases=_module_and_load_cases(
          [(f"tokens_{i}", "tokens", (), x) for i, x in enumerate(inputs)]),
      fields={"has_default_signature": False,
              "missing_signature_example": "default"})


# --- tf1_image_with_attachments -----------------------------------------------
CLASS_NAMES = (b"cat", b"dog", b"bird", b"fish")


def image_module_info(hub):
  """Makes the ``ImageModuleInfo`` attached to tf1_image_with_attachments.

  Args:
    hub: the tensorflow_hub module.

  Returns:
    The message (default image size 6x6).
  """
  info = hub.ImageModuleInfo()
  info.default_image_size.height = 6
  info.default_image_size.width = 6
  return info


def label_info():
  """Makes the ``tf.train.Example`` attached under ``label_info``.

  Returns:
    The example: class names, number of classes and mean RGB.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.train.Example(features=tf.train.Features(feature={
      "class_names": tf.train.Feature(
          bytes_list=tf.train.BytesList(value=list(CLASS_NAMES))),
      "num_classes": tf.train.Feature(
          int64_list=tf.train.Int64List(value=[len(CLASS_NAMES)])),
      "mean_rgb": tf.train.Feature(
          float_list=tf.train.FloatList(value=[0.5, 0.25, 0.125])),
  }))


def _image_with_attachments_fn(hub, work_dir):
  """A module_fn for images of any size with two attached messages.

  Args:
    hub: the tensorflow_hub module.
    work_dir: a scratch folder for asset sources.

  Returns:
    The ``module_fn`` for ``hub.create_module_spec``.
  """
  del work_dir

  def module_fn():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3],
                                      name="images")
    conv = tf.compat.v1.layers.conv2d(images, 4, 3, padding="same",
                                      activation=tf.nn.relu, name="conv")
    pooled = tf.reduce_mean(conv, axis=[1, 2])
    logits = tf.compat.v1.layers.dense(pooled, len(CLASS_NAMES),
                                       name="classifier")
    hub.add_signature(inputs=images, outputs=logits)
    hub.add_signature("image_classification", inputs={"images": images},
                      outputs={"default": logits,
                               "probabilities": tf.nn.softmax(logits)})
    hub.attach_message("image_module_info", image_module_info(hub))
    hub.attach_message("label_info", label_info())
  return module_fn


def _image_with_attachments() -> Recipe:
  """Returns the recipe of ``tf1_image_with_attachments``."""
  rng = np.random.RandomState(41)
  images = {"6x6": rng.rand(2, 6, 6, 3).astype(np.float32),
            "9x7": rng.rand(2, 9, 7, 3).astype(np.float32)}
  signature_inputs = []
  for size, value in images.items():
    signature_inputs.append((f"default_{size}", "default", (),
                             {"default": value}))
    signature_inputs.append((f"image_classification_{size}",
                             "image_classification", (), {"images": value}))
  return Recipe(
      name="tf1_image_with_attachments", kind="attach",
      description=(
          "Image classifier with unknown input height/width and attached "
          "messages (hub.attach_message): an ImageModuleInfo (default image "
          "size 6x6) and a tf.train.Example under key 'label_info'."),
      make_module_fn=_image_with_attachments_fn,
      weights=_seeded_normal(404, 0.5),
      cases=_module_and_load_cases(signature_inputs),
      fields={"attachment_storage": (
          "MetaGraphDef.collection_def['hub_module_attachments'].bytes_list: "
          "serialized tensorflow_hub.ModuleAttachment{key, value} protos")},
      attached_message_keys=("image_module_info", "label_info"),
      image_helpers=True)


# --- half_plus_two_v1 ---------------------------------------------------------
def _half_plus_two_fn(hub, work_dir):
  """y = a * x + b for an input of any shape.

  Args:
    hub: the tensorflow_hub module.
    work_dir: a scratch folder for asset sources.

  Returns:
    The ``module_fn`` for ``hub.create_module_spec``.
  """
  del work_dir

  def module_fn():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    a = tf.compat.v1.get_variable("a", shape=[])
    b = tf.compat.v1.get_variable("b", shape=[])
    x = tf.compat.v1.placeholder(tf.float32)
    hub.add_signature(inputs=x, outputs=a * x + b)
  return module_fn


def _half_plus_two() -> Recipe:
  """Returns the recipe of ``half_plus_two_v1``."""
  vector = np.array([1.0, 2.0, 3.0], np.float32)
  scalar = np.array(10.0, np.float32)
  return Recipe(
      name="half_plus_two_v1", kind="half_plus_two",
      description=(
          "The tensorflow_hub test module: y = 0.5 * x + 2 with scalar "
          "variables a, b; input placeholder of unknown shape; only the "
          "'default' signature. Its archive has member names without the "
          "'./' prefix, like the half_plus_two_v1.tar.gz of the "
          "tensorflow/hub repository."),
      make_module_fn=_half_plus_two_fn,
      weights=lambda shapes: {"a": np.array(0.5, np.float32),
                              "b": np.array(2.0, np.float32)},
      cases=_module_and_load_cases(
          [("default_0", "default", (), {"default": vector}),
           ("default_scalar", "default", (), {"default": scalar})]),
      fields={"archive_is_original": True},
      dot_prefix=False)


# --- tf1_refvar_lstm ----------------------------------------------------------
LSTM_VOCABULARY = ("the", "a", "cat", "dog", "bird", "sat", "ran", "flew",
                   "on", "mat", "big", "small")
LSTM_EMBEDDING_DIM = 4
LSTM_UNITS = 5
LSTM_DROPOUT_NOTE = ("the train graph applies seeded dropout to the word "
                     "vectors of the 'tokens' signature: values are random, "
                     "check shape only")


def _refvar_lstm_fn(hub, work_dir):
  """An ELMo-like module_fn with reference variables and v1 control flow.

  Both signatures share the word table, the ``word_emb`` variable and the
  LSTM cell. ``default`` splits 1-D sentences on spaces; a ``tf.cond`` gives
  the token matrix at least one column, so a batch of empty sentences still
  runs through ``dynamic_rnn`` (their length is 0, so they pool to zeros).
  ``tokens`` takes 2-D tokens and their lengths; in the train variant it
  applies dropout to the word vectors, ``default`` never does (so fine-tuning
  through ``default`` is deterministic).

  Args:
    hub: the tensorflow_hub module.
    work_dir: a scratch folder for asset sources.

  Returns:
    The ``module_fn`` for ``hub.create_module_spec`` (it takes ``training``).
  """
  del work_dir

  def module_fn(training):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.compat.v1.disable_control_flow_v2()
    with tf.compat.v1.variable_scope("", use_resource=False):
      table = tf.compat.v1.lookup.StaticHashTable(
          tf.compat.v1.lookup.KeyValueTensorInitializer(
              list(LSTM_VOCABULARY),
              np.arange(len(LSTM_VOCABULARY), dtype=np.int64)),
          default_value=len(LSTM_VOCABULARY))
      word_emb = tf.compat.v1.get_variable(
          "word_emb", [len(LSTM_VOCABULARY) + 1, LSTM_EMBEDDING_DIM])
      tf.compat.v1.add_to_collection(
          tf.compat.v1.GraphKeys.REGULARIZATION_LOSSES,
          tf.multiply(1e-3, tf.nn.l2_loss(word_emb), name="word_emb_l2"))
      cell = tf.compat.v1.nn.rnn_cell.LSTMCell(LSTM_UNITS)

      def encode(tokens, lengths, dropout):
        vectors = tf.nn.embedding_lookup(word_emb, table.lookup(tokens))
        inputs = (tf.compat.v1.nn.dropout(vectors, rate=0.25, seed=7)
                  if dropout else vectors)
        outputs, _ = tf.compat.v1.nn.dynamic_rnn(
            cell, inputs, sequence_length=lengths, dtype=tf.float32,
            scope="lstm")
        counts = tf.maximum(tf.cast(lengths, tf.float32), 1.0)
        pooled = tf.reduce_sum(outputs, axis=1) / tf.expand_dims(counts, -1)
        return pooled, outputs, vectors

      sentences = tf.compat.v1.placeholder(tf.string, [None],
                                           name="sentences")
      words = tf.compat.v1.string_split(tf.strings.lower(sentences), sep=" ")
      dense_words = tf.sparse.to_dense(words, default_value="")
      batch_size = tf.shape(dense_words)[0]
      dense_words = tf.cond(
          tf.shape(dense_words)[1] > 0, lambda: dense_words,
          lambda: tf.fill([batch_size, 1], ""), name="at_least_one_column")
      lengths = tf.reduce_sum(
          tf.cast(tf.not_equal(dense_words, ""), tf.int32), axis=1)
      pooled, _, _ = encode(dense_words, lengths, dropout=False)
      hub.add_signature(inputs={"sentences": sentences},
                        outputs={"default": pooled})

      tokens = tf.compat.v1.placeholder(tf.string, [None, None],
                                        name="tokens")
      sequence_len = tf.compat.v1.placeholder(tf.int32, [None],
                                              name="sequence_len")
      pooled, outputs, vectors = encode(tokens, sequence_len,
                                        dropout=training)
      hub.add_signature("tokens",
                        inputs={"tokens": tokens,
                                "sequence_len": sequence_len},
                        outputs={"default": pooled, "lstm_outputs": outputs,
                                 "word_emb": vectors})
  return module_fn


def _refvar_lstm() -> Recipe:
  """Returns the recipe of ``tf1_refvar_lstm``."""
  sentences = [
      np.array(["the cat sat on the mat", "a big dog ran", "",
                "Small bird flew unknownword"]),
      np.array(["", ""]),
  ]
  tokens = [
      {"tokens": np.array([["the", "cat", "sat"], ["a", "dog", ""],
                           ["bird", "", ""]]),
       "sequence_len": np.array([3, 2, 1], np.int32)},
      {"tokens": np.array([["big", "unknown", "mat", "on"]]),
       "sequence_len": np.array([4], np.int32)},
  ]
  signature_inputs = []
  for variant, tags in (("infer", ()), ("train", ("train",))):
    signature_inputs += [(f"{variant}_default_{i}", "default", tags,
                          {"sentences": s}) for i, s in enumerate(sentences)]
    signature_inputs += [(f"{variant}_tokens_{i}", "tokens", tags, x)
                         for i, x in enumerate(tokens)]
  return Recipe(
      name="tf1_refvar_lstm", kind="refvar_lstm",
      description=(
          "ELMo-like module of the TF 1.x era: reference variables "
          "(VariableV2 ops, built under variable_scope('', "
          "use_resource=False)), v1 control flow (tf.compat.v1.nn."
          "dynamic_rnn over an LSTMCell: Enter/Exit/Switch/Merge/"
          "NextIteration/LoopCond; and a tf.cond that gives the token matrix "
          "at least one column), an in-graph word table "
          "(KeyValueTensorInitializer, 12 words + 1 OOV id) and a "
          "'word_emb' variable with an L2 loss in REGULARIZATION_LOSSES. "
          "Signatures 'default' (1-D sentences split on spaces -> "
          "[batch, 5], mean of the LSTM outputs over the words; an empty "
          "sentence gives zeros) and 'tokens' (2-D tokens + sequence_len -> "
          "'default', 'lstm_outputs', 'word_emb'). Tag sets {} and "
          "{'train'}: the train variant applies seeded dropout to the word "
          "vectors of 'tokens' only, so 'default' is deterministic in both. "
          "hub.load lists no variables for it (TF2 does not make Python "
          "objects of reference variables; the signatures still read them)."),
      make_module_fn=_refvar_lstm_fn,
      tags_and_args=TRAIN_AND_INFER,
      weights=_seeded_normal(505, 0.5),
      cases=_module_and_load_cases(signature_inputs, [(("train",), "tokens")],
                                   LSTM_DROPOUT_NOTE),
      fields={
          "vocab_size": len(LSTM_VOCABULARY),
          "embedding_dim": LSTM_EMBEDDING_DIM,
          "lstm_units": LSTM_UNITS,
          "stochastic": {"signature": "tokens", "tags": ["train"],
                         "why": "dropout on the word vectors is active in the "
                                "train graph of the 'tokens' signature"},
      },
      collections_signature="default",
      finetune=FinetuneSpec(
          signature="default", tags=("train",), input_name="sentences",
          input_value=np.array(["the cat sat on the mat", "a small bird flew",
                                "big dog"])),
      expect_reference_variables=True,
      expect_v1_control_flow=True)


# --- tf1_sparse_ragged_inputs -------------------------------------------------
SPARSE_NUM_IDS = 10
SPARSE_DIM = 4
SPARSE_OUTPUT_DIM = 3


def _sparse_ragged_fn(hub, work_dir):
  """A module_fn with a sparse-input and a ragged-input signature.

  Both bag the embeddings of int64 ids (mean) and project them to 3 values;
  an empty row gives the projection of the padding row (sparse) or of zeros
  (ragged).

  Args:
    hub: the tensorflow_hub module.
    work_dir: a scratch folder for asset sources.

  Returns:
    The ``module_fn`` for ``hub.create_module_spec``.
  """
  del work_dir

  def module_fn():
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    embeddings = tf.compat.v1.get_variable(
        "embeddings", [SPARSE_NUM_IDS + 1, SPARSE_DIM])
    projection = tf.compat.v1.layers.Dense(SPARSE_OUTPUT_DIM, name="proj")

    sparse_ids = tf.compat.v1.sparse.placeholder(tf.int64, [None, None],
                                                 name="ids")
    # Rows without ids get the padding id, so the output has one row per
    # input row.
    filled, _ = tf.sparse.fill_empty_rows(sparse_ids, SPARSE_NUM_IDS)
    bags = tf.nn.embedding_lookup_sparse(embeddings, filled, None,
                                         combiner="mean")
    hub.add_signature(inputs={"ids": sparse_ids},
                      outputs={"default": projection(bags)})

    ragged_ids = tf.compat.v1.ragged.placeholder(
        tf.int64, ragged_rank=1, value_shape=[], name="ragged_ids")
    vectors = tf.gather(embeddings, ragged_ids)
    counts = tf.maximum(tf.cast(ragged_ids.row_lengths(), tf.float32), 1.0)
    means = tf.reduce_sum(vectors, axis=1) / tf.expand_dims(counts, -1)
    hub.add_signature("ragged", inputs={"ids": ragged_ids},
                      outputs={"default": projection(means)})
  return module_fn


def sparse_composite(input_name: str) -> Dict[str, Any]:
  """The ``composite_inputs`` record of a sparse int64 input.

  The components are named as ``hub.load``'s signature names its arguments
  (``NAME_indices``, ``NAME_values``, ``NAME_dense_shape``), in the
  ``hub.Module`` cases too.
  """
  return {"type": "sparse", "dtype": "int64",
          "components": {part: f"{input_name}_{part}"
                         for part in ("indices", "values", "dense_shape")}}


def ragged_composite(input_name: str) -> Dict[str, Any]:
  """The ``composite_inputs`` record of a ragged int64 input.

  The components are named as ``hub.load``'s signature names its arguments
  (``NAME_component_0`` for the values, ``NAME_component_1`` for the row
  splits), in the ``hub.Module`` cases too, so both kinds of case store the
  same arrays under the same names.
  """
  return {"type": "ragged", "dtype": "int64", "ragged_rank": 1,
          "row_splits_dtype": "int64",
          "components": {"values": f"{input_name}_component_0",
                         "row_splits": f"{input_name}_component_1"}}


def _sparse_ragged_inputs() -> Recipe:
  """Returns the recipe of ``tf1_sparse_ragged_inputs``."""
  sparse_values = [
      ([[0, 0], [0, 1], [0, 2], [2, 0], [3, 1]], [1, 4, 7, 9, 3], [4, 3]),
      ([[1, 0]], [5], [2, 1]),
  ]
  ragged_values = [
      ([1, 4, 7, 9, 3], [0, 3, 3, 4, 5]),
      ([5, 5, 0], [0, 3]),
  ]
  cases = []
  for api, prefix in (("hub.Module", "tf1_"),
                      ("hub.load.signatures", "tf2_hubload_")):
    for i, (indices, values, shape) in enumerate(sparse_values):
      cases.append(CaseSpec(
          case_id=f"{prefix}default_{i}", api=api, tags=(),
          signature="default",
          inputs={"ids_indices": np.array(indices, np.int64),
                  "ids_values": np.array(values, np.int64),
                  "ids_dense_shape": np.array(shape, np.int64)},
          composite_inputs={"ids": sparse_composite("ids")}))
    for i, (values, splits) in enumerate(ragged_values):
      composite = ragged_composite("ids")
      names = composite["components"]
      cases.append(CaseSpec(
          case_id=f"{prefix}ragged_{i}", api=api, tags=(),
          signature="ragged",
          inputs={names["values"]: np.array(values, np.int64),
                  names["row_splits"]: np.array(splits, np.int64)},
          composite_inputs={"ids": composite}))
  return Recipe(
      name="tf1_sparse_ragged_inputs", kind="sparse_ragged",
      description=(
          "Module with composite-tensor inputs: signature 'default' takes a "
          "tf.compat.v1.sparse.placeholder 'ids' (int64 [batch, None]; "
          "empty rows filled with a padding id, embedding_lookup_sparse mean "
          "-> Dense) and signature 'ragged' takes a "
          "tf.compat.v1.ragged.placeholder 'ids' (int64, ragged_rank 1; "
          "mean of the gathered embeddings -> the same Dense). Both output "
          "[batch, 3]. tensorflow_hub 0.15 supports both: hub.Module accepts "
          "a tf.SparseTensor / tf.RaggedTensor, and hub.load's signatures "
          "take the components as separate arguments (ids_indices, "
          "ids_values, ids_dense_shape; ids_component_0 = values, "
          "ids_component_1 = row splits)."),
      make_module_fn=_sparse_ragged_fn,
      weights=_seeded_normal(606, 0.5),
      cases=cases,
      fields={
          "sparse_inputs": [{
              "signature": "default", "input": "ids", "dtype": "int64",
              "shape": [None, None],
              "hub_module": "a tf.SparseTensor (or a sparse placeholder fed "
                            "a tf.compat.v1.SparseTensorValue)",
              "hub_load_arguments": ["ids_indices", "ids_values",
                                     "ids_dense_shape"]}],
          "ragged_inputs": [{
              "signature": "ragged", "input": "ids", "dtype": "int64",
              "ragged_rank": 1, "row_splits_dtype": "int64",
              "shape": [None, None],
              "supported_by_tensorflow_hub_0_15": True,
              "hub_module": "a tf.RaggedTensor (here "
                            "tf.RaggedTensor.from_row_splits of fed values "
                            "and row splits)",
              "hub_load_arguments": ["ids_component_0", "ids_component_1"]}],
      })


def recipes() -> List[Recipe]:
  """Returns the recipes of all TF1 Hub modules of the part, in build order."""
  return [_text_embedding(), _image_feature_vector(),
          _tokens_signature_only(), _image_with_attachments(),
          _half_plus_two(), _refvar_lstm(), _sparse_ragged_inputs()]


def recipe(name: str) -> Recipe:
  """Returns the recipe called ``name``.

  Raises:
    KeyError: no such module.
  """
  for each in recipes():
    if each.name == name:
      return each
  raise KeyError(name)
