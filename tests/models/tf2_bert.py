"""Writes a tiny BERT-style pair of TF2 SavedModels (TensorFlow 2.21).

Shaped like TF Hub's BERT preprocessors and encoders:

- ``tf2_bert_preprocess``: ``__call__(sentences)`` turns a batch of strings
  into the dict ``input_word_ids`` / ``input_mask`` / ``input_type_ids``
  (int32, [batch, SEQ_LENGTH]). Its ``tokenize`` function returns the
  word-piece ids as a RaggedTensor [batch, (words), (pieces)], and
  ``bert_pack_inputs(segments, seq_length)`` packs a list of such segments
  into the dict. The tokenizer is ``tensorflow_text.BertTokenizer`` (lower
  casing) over ``assets/vocab.txt``; packing uses ``RoundRobinTrimmer``,
  ``combine_segments`` and ``pad_model_inputs``. The graph therefore holds
  ops that only ``import tensorflow_text`` registers (``CaseFoldUTF8``,
  ``NormalizeUTF8``, ``RegexSplitWithOffsets``,
  ``WordpieceTokenizeWithOffsets``, ``TFText>RoundRobinTrim``).
- ``tf2_bert_encoder``: ``__call__(inputs, training=False)`` on that dict
  returns ``pooled_output`` [batch, 8], ``sequence_output`` [batch, seq, 8],
  ``default`` (= ``pooled_output``) and ``encoder_outputs``, a list of the
  2 layers' [batch, seq, 8] outputs. Embeddings 32 x 8, two single-head
  self-attention blocks, dropout only when ``training=True`` (the regular,
  random dropout op), one L2 regularization loss. Core TensorFlow ops only.

Both have the ``variables`` / ``trainable_variables`` /
``regularization_losses`` attributes and a ``serving_default`` signature.
"""
from __future__ import annotations

import os
from typing import Any, Dict

import numpy as np

from tf2_writers import write_vocabulary

SEQ_LENGTH = 16
HIDDEN = 8
NUM_LAYERS = 2
DROPOUT_RATE = 0.1
EMBEDDING_L2 = 1e-3

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
WORD_PIECES = ("the", "a", "cat", "dog", "sat", "on", "mat", "hub", "model",
               "is", "good", "play", "##ing", "##s", "##ed", "un", "##like",
               "##ly", "text", "token", "##ize", ".", ",", "!", "?", "and",
               "run")
VOCABULARY = SPECIAL_TOKENS + WORD_PIECES  # 32 entries
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIAL_TOKENS))

ENCODER_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _preprocess_module_class():
  """Defines the tf.Module class of the preprocessor."""
  tf = _tf()
  import tensorflow_text as text  # pylint: disable=g-import-not-at-top

  class BertPreprocessModel(tf.Module):
    """Strings -> word pieces -> packed, padded BERT inputs."""
    variables = None
    trainable_variables = None

    def __init__(self, vocab_path: str):
      super().__init__(name="bert_preprocess")
      self.vocab_file = tf.saved_model.Asset(vocab_path)
      self._vocab_table = tf.lookup.StaticHashTable(
          tf.lookup.TextFileInitializer(
              self.vocab_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
              tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
          default_value=-1)
      self._tokenizer = text.BertTokenizer(
          self._vocab_table, token_out_type=tf.int64,
          unknown_token=SPECIAL_TOKENS[UNK_ID], lower_case=True)
      # No variables; the lists are there as in TF Hub's preprocessors.
      self.variables = []
      self.trainable_variables = []
      self.regularization_losses = []

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, sentences):
      return tf.cast(self._tokenizer.tokenize(sentences), tf.int32)

    @tf.function
    def bert_pack_inputs(self, inputs, seq_length=SEQ_LENGTH):
      # [batch, (words), (pieces)] -> [batch, (pieces)]
      segments = [tf.cast(s.merge_dims(-2, -1), tf.int64) for s in inputs]
      # Room for [CLS] and one [SEP] per segment.
      budget = seq_length - len(segments) - 1
      trimmed = text.RoundRobinTrimmer(max_seq_length=budget).trim(segments)
      word_ids, type_ids = text.combine_segments(
          trimmed, start_of_sequence_id=CLS_ID, end_of_segment_id=SEP_ID)
      word_ids, mask = text.pad_model_inputs(word_ids, seq_length, PAD_ID)
      type_ids, _ = text.pad_model_inputs(type_ids, seq_length, 0)
      return {"input_word_ids": tf.cast(word_ids, tf.int32),
              "input_mask": tf.cast(mask, tf.int32),
              "input_type_ids": tf.cast(type_ids, tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences):
      packed = self.bert_pack_inputs(
          [self.tokenize(sentences)],
          seq_length=tf.constant(SEQ_LENGTH, tf.int32))
      for tensor in packed.values():
        tensor.set_shape([None, SEQ_LENGTH])
      return packed

  return BertPreprocessModel


def write_preprocess(folder: str, scratch: str) -> Dict[str, Any]:
  """Writes ``tf2_bert_preprocess``.

  Args:
    folder: the model folder to create.
    scratch: a folder for the vocabulary before it is copied in as an asset.

  Returns:
    The static part of its manifest entry.
  """
  tf = _tf()
  vocab_path = os.path.join(scratch, "vocab.txt")
  write_vocabulary(vocab_path, VOCABULARY)
  model = _preprocess_module_class()(vocab_path)
  # Traced for segments as tokenize makes them. Each trace adds ~100-200 KB
  # to saved_model.pb (mostly the RaggedTensor validation of tensorflow_text
  # ops), and tf.saved_model.save stores one more copy of the one-segment
  # trace for __call__, so there are no more (e.g. for ragged rank 1).
  segment = tf.RaggedTensorSpec([None, None, None], tf.int32, ragged_rank=2)
  for num_segments in (1, 2):
    model.bert_pack_inputs.get_concrete_function(
        [segment] * num_segments,
        seq_length=tf.TensorSpec([], tf.int32, name="seq_length"))

  @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                               name="sentences")])
  def serve(sentences):
    return model(sentences)

  tf.saved_model.save(model, folder, signatures={"serving_default": serve})
  return {
      "kind": "tf2_bert_preprocess",
      "description": (
          "BERT-style preprocessor like TF Hub's: __call__(sentences) -> "
          "dict input_word_ids / input_mask / input_type_ids (int32, "
          f"[batch, {SEQ_LENGTH}]); tokenize (strings -> RaggedTensor "
          "[batch, (words), (pieces)] of word-piece ids, "
          "tensorflow_text.BertTokenizer with lower casing over "
          "assets/vocab.txt) and bert_pack_inputs(segments, seq_length) "
          "(RoundRobinTrimmer, combine_segments, pad_model_inputs; traced "
          "for 1 and 2 segments [batch, (words), (pieces)], seq_length a "
          "scalar int32); serving_default signature. Needs `import "
          "tensorflow_text` before loading."),
      "seq_length": SEQ_LENGTH,
      "vocab_size": len(VOCABULARY),
      "special_tokens": {name: i for i, name in enumerate(SPECIAL_TOKENS)},
      "encoder": "tf2_bert_encoder",
  }


def _encoder_module_class():
  """Defines the tf.Module class of the encoder."""
  tf = _tf()

  def layer_norm(x):
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + 1e-6)

  class BertEncoderModel(tf.Module):
    """Embeddings + NUM_LAYERS single-head attention blocks + pooler."""
    variables = None
    trainable_variables = None

    def __init__(self, rng: np.random.RandomState):
      super().__init__(name="bert_encoder")

      def weight(name, shape, scale=0.5):
        return tf.Variable((rng.standard_normal(shape) * scale).astype(
            np.float32), name=name)

      self._word_embeddings = weight("word_embeddings",
                                     (len(VOCABULARY), HIDDEN))
      self._type_embeddings = weight("type_embeddings", (2, HIDDEN), 0.1)
      self._position_embeddings = weight("position_embeddings",
                                         (SEQ_LENGTH, HIDDEN), 0.1)
      self._layers = []
      for i in range(NUM_LAYERS):
        self._layers.append({
            part: weight(f"transformer/layer_{i}/{part}", shape, scale)
            for part, shape, scale in (
                ("query/kernel", (HIDDEN, HIDDEN), 0.5),
                ("key/kernel", (HIDDEN, HIDDEN), 0.5),
                ("value/kernel", (HIDDEN, HIDDEN), 0.5),
                ("output/kernel", (HIDDEN, HIDDEN), 0.5),
                ("intermediate/kernel", (HIDDEN, HIDDEN), 0.5),
                ("intermediate/bias", (HIDDEN,), 0.1))})
      self._pooler_kernel = weight("pooler_transform/kernel",
                                   (HIDDEN, HIDDEN))
      self._pooler_bias = weight("pooler_transform/bias", (HIDDEN,), 0.1)
      all_variables = [self._word_embeddings, self._type_embeddings,
                       self._position_embeddings]
      for layer in self._layers:
        all_variables.extend(layer.values())
      all_variables += [self._pooler_kernel, self._pooler_bias]
      self.variables = all_variables
      self.trainable_variables = list(all_variables)
      word_embeddings = self._word_embeddings
      self.regularization_losses = [tf.function(
          lambda: EMBEDDING_L2 * tf.reduce_sum(tf.square(word_embeddings)),
          input_signature=[])]

    def _dropout(self, x, training):
      return tf.nn.dropout(x, rate=DROPOUT_RATE) if training else x

    def _block(self, x, mask_bias, layer, training):
      query = tf.matmul(x, layer["query/kernel"])
      key = tf.matmul(x, layer["key/kernel"])
      value = tf.matmul(x, layer["value/kernel"])
      scores = tf.matmul(query, key, transpose_b=True) / np.sqrt(HIDDEN)
      weights = tf.nn.softmax(scores + mask_bias, axis=-1)
      attended = tf.matmul(tf.matmul(weights, value), layer["output/kernel"])
      x = layer_norm(x + self._dropout(attended, training))
      hidden = tf.tanh(tf.matmul(x, layer["intermediate/kernel"])
                       + layer["intermediate/bias"])
      return layer_norm(x + self._dropout(hidden, training))

    def encode(self, inputs, training):
      word_ids = inputs["input_word_ids"]
      mask = tf.cast(inputs["input_mask"], tf.float32)
      length = tf.shape(word_ids)[1]
      x = (tf.gather(self._word_embeddings, word_ids)
           + tf.gather(self._type_embeddings, inputs["input_type_ids"])
           + self._position_embeddings[None, :length])
      x = self._dropout(layer_norm(x), training)
      mask_bias = (1.0 - mask[:, None, :]) * -10000.0
      encoder_outputs = []
      for layer in self._layers:
        x = self._block(x, mask_bias, layer, training)
        encoder_outputs.append(x)
      pooled = tf.tanh(tf.matmul(x[:, 0], self._pooler_kernel)
                       + self._pooler_bias)
      return {"pooled_output": pooled, "sequence_output": x,
              "default": pooled, "encoder_outputs": encoder_outputs}

    @tf.function
    def __call__(self, inputs, training=False):
      return self.encode(inputs, training)

  return BertEncoderModel


def encoder_input_specs() -> Dict[str, Any]:
  """The int32 [batch, seq] TensorSpecs of the encoder's dict input."""
  tf = _tf()
  return {name: tf.TensorSpec([None, None], tf.int32, name=name)
          for name in ENCODER_INPUTS}


def write_encoder(folder: str) -> Dict[str, Any]:
  """Writes ``tf2_bert_encoder``.

  Args:
    folder: the model folder to create.

  Returns:
    The static part of its manifest entry.
  """
  tf = _tf()
  model = _encoder_module_class()(np.random.RandomState(505))
  for training in (False, True):
    model.__call__.get_concrete_function(encoder_input_specs(),
                                         training=training)

  @tf.function(input_signature=[encoder_input_specs()])
  def serve(inputs):
    outputs = model(inputs, training=False)
    return {k: outputs[k] for k in ("default", "pooled_output",
                                    "sequence_output")}

  tf.saved_model.save(model, folder, signatures={
      "serving_default": serve.get_concrete_function()})
  return {
      "kind": "tf2_bert_encoder",
      "description": (
          "BERT-style encoder like TF Hub's: __call__(inputs, "
          "training=False) on the dict input_word_ids / input_mask / "
          "input_type_ids (int32 [batch, seq], seq <= "
          f"{SEQ_LENGTH}) returns pooled_output [batch, {HIDDEN}], "
          f"sequence_output [batch, seq, {HIDDEN}], default (= "
          "pooled_output) and encoder_outputs (a list of the "
          f"{NUM_LAYERS} layers' outputs); embeddings "
          f"{len(VOCABULARY)} x {HIDDEN}, single-head self-attention "
          "blocks, random dropout only when training=True, one L2 "
          "regularization loss; serving_default (without "
          "encoder_outputs). Core TensorFlow ops only."),
      "num_regularization_losses": 1,
      "num_layers": NUM_LAYERS,
      "hidden_size": HIDDEN,
      "preprocessor": "tf2_bert_preprocess",
  }
