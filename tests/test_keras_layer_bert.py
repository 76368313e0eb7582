"""The BERT pattern end to end: text -> preprocess -> trainable encoder -> Dense.

``tf2_bert_preprocess`` (tensorflow_text ops; ``__call__`` on strings,
``tokenize`` and ``bert_pack_inputs``) feeds ``tf2_bert_encoder`` (dict in,
dict out with ``pooled_output``, ``sequence_output``, ``default`` and the
``encoder_outputs`` list; dropout only when ``training=True``), as on TF Hub.
Runs on Keras 3 and tf_keras (TF 2.21 with TF_USE_LEGACY_KERAS=1, and TF
2.15). Nothing here imports tensorflow_text: hub_adapter does.
"""
from __future__ import annotations

import numpy as np
import pytest

import hub_adapter as hub
from hub_adapter import runtime

TOL = {"rtol": 1e-5, "atol": 1e-5}
PREPROCESS = "tf2_bert_preprocess"
ENCODER = "tf2_bert_encoder"
SENTENCES = ["the cat sat on the mat", "a dog is playing",
             "the model is good", "hub text tokenize",
             "unlikely dogs and cats", "the mat is good!"]
LABELS = [0, 1, 0, 1, 1, 0]


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


@pytest.fixture(scope="module")
def keras():
  return runtime.keras_module()


def _classifier(keras, shared_fixtures):
  """text -> preprocess layer -> trainable encoder layer -> Dense(2)."""
  tf = _tf()
  keras.utils.set_random_seed(7)
  preprocess = hub.KerasLayer(shared_fixtures.path(PREPROCESS),
                              name="preprocess")
  encoder = hub.KerasLayer(shared_fixtures.path(ENCODER), trainable=True,
                           name="encoder")
  text = keras.Input(shape=(), dtype=tf.string, name="text")
  outputs = encoder(preprocess(text))
  logits = keras.layers.Dense(2, name="classifier")(outputs["pooled_output"])
  model = keras.Model(text, logits)
  model.compile(optimizer=keras.optimizers.Adam(0.01),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  return model, encoder


def _weights(layer):
  return [np.array(w.numpy()) for w in layer.trainable_weights]


def test_fit_lowers_the_loss_and_moves_the_encoder(keras, shared_fixtures):
  model, encoder = _classifier(keras, shared_fixtures)
  x = np.array(SENTENCES, dtype=object)
  y = np.array(LABELS)
  assert len(encoder.trainable_weights) == len(
      shared_fixtures.entry(ENCODER)["variables"])
  before = _weights(encoder)
  # Compared without dropout (evaluate), since the training loss of single
  # epochs moves with the dropout masks.
  loss_before = model.evaluate(x, y, verbose=0)
  model.fit(x, y, epochs=15, batch_size=6, verbose=0)
  loss_after = model.evaluate(x, y, verbose=0)
  assert loss_after < 0.8 * loss_before
  moved = [not np.allclose(a, b) for a, b in zip(before, _weights(encoder))]
  assert all(moved), moved
  # The encoder's regularization loss is part of the model's losses.
  assert len(model.losses) >= 1


def test_training_true_reaches_the_encoder(keras, shared_fixtures):
  model, encoder = _classifier(keras, shared_fixtures)
  x = _tf().constant(SENTENCES)
  inference = np.array(model(x, training=False))
  np.testing.assert_allclose(np.array(model(x, training=False)), inference,
                             **TOL)
  # Dropout runs in the encoder only when training=True reaches it.
  assert not np.allclose(np.array(model(x, training=True)), inference)
  assert encoder.model.signature is None  # __call__ with `training`


def test_layers_reproduce_the_goldens(shared_fixtures):
  (pre_case,) = shared_fixtures.cases(PREPROCESS, "call")
  preprocess = hub.KerasLayer(shared_fixtures.path(PREPROCESS))
  packed = preprocess(pre_case.inputs()["inputs"])
  pre_case.assert_outputs({k: np.array(v) for k, v in packed.items()})
  (enc_case,) = [c for c in shared_fixtures.cases(ENCODER, "call")
                 if c.spec["training"] is False]
  encoder = hub.KerasLayer(shared_fixtures.path(ENCODER), trainable=True)
  outputs = encoder(packed, training=False)
  assert isinstance(outputs["encoder_outputs"], list)
  outputs = dict(outputs, encoder_outputs=np.stack(
      [np.array(t) for t in outputs["encoder_outputs"]]))
  enc_case.assert_outputs({k: np.array(v) for k, v in outputs.items()})


@pytest.mark.requires("keras3")
def test_keras3_dot_keras_round_trip(keras, shared_fixtures, tmp_path):
  model, _ = _classifier(keras, shared_fixtures)
  x = np.array(SENTENCES, dtype=object)
  model.fit(x, np.array(LABELS), epochs=2, batch_size=6, verbose=0)
  path = str(tmp_path / "bert.keras")
  model.save(path)
  reloaded = keras.models.load_model(path)  # default safe mode
  tf = _tf()
  np.testing.assert_allclose(np.array(reloaded(tf.constant(SENTENCES))),
                             np.array(model(tf.constant(SENTENCES))), **TOL)
  np.testing.assert_allclose(reloaded.predict(x, verbose=0),
                             model.predict(x, verbose=0), **TOL)


@pytest.mark.requires("tf_keras")
def test_tf_keras_saved_model_round_trip(keras, shared_fixtures, tmp_path):
  model, _ = _classifier(keras, shared_fixtures)
  x = np.array(SENTENCES, dtype=object)
  model.fit(x, np.array(LABELS), epochs=2, batch_size=6, verbose=0)
  path = str(tmp_path / "bert_saved_model")
  model.save(path)  # no suffix: the SavedModel format
  reloaded = keras.models.load_model(path)
  np.testing.assert_allclose(reloaded.predict(x, verbose=0),
                             model.predict(x, verbose=0), **TOL)


def _ragged(tf, arrays, prefix=""):
  return tf.RaggedTensor.from_nested_row_splits(
      arrays[f"{prefix}flat_values"],
      [arrays[f"{prefix}row_splits_0"], arrays[f"{prefix}row_splits_1"]])


def test_preprocess_functions_pass_through(shared_fixtures):
  """``load(preprocess).tokenize`` / ``.bert_pack_inputs`` reach the
  SavedModel's own functions (attribute pass-through) and equal the
  goldens."""
  tf = _tf()
  preprocess = hub.load(shared_fixtures.path(PREPROCESS))
  cases = {c.id: c for c in shared_fixtures.cases(PREPROCESS, "function")}
  case = cases["tokenize_0"]
  tokens = preprocess.tokenize(tf.constant(case.inputs()["inputs"]))
  assert isinstance(tokens, tf.RaggedTensor) and tokens.ragged_rank == 2
  case.assert_outputs({
      "flat_values": tokens.flat_values.numpy(),
      "row_splits_0": tokens.nested_row_splits[0].numpy(),
      "row_splits_1": tokens.nested_row_splits[1].numpy()})
  for case_id, count in (("bert_pack_inputs_one_segment", 1),
                         ("bert_pack_inputs_two_segments", 2)):
    case = cases[case_id]
    arrays = case.inputs()
    segments = [_ragged(tf, arrays, f"segment_{i}.") for i in range(count)]
    packed = preprocess.bert_pack_inputs(
        segments, tf.constant(case.spec["arguments"]["seq_length"]))
    case.assert_outputs({k: v.numpy() for k, v in packed.items()})
