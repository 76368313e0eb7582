"""Tag-set, signature and output picking, and input checking
(hub_adapter.signatures), on hand-built ModelInfo values."""
import numpy as np
import pytest

from hub_adapter import errors
from hub_adapter import signatures
from hub_adapter.model_info import ModelInfo, SignatureInfo, TensorInfo
from hub_adapter.support import Format, Mode

EMPTY = frozenset()
TRAIN = frozenset({"train"})
SERVE = frozenset({"serve"})


def _sig(name, inputs, outputs):
  def tensors(spec):
    return {k: TensorInfo(k, dtype, shape) for k, (dtype, shape) in
            spec.items()}
  return SignatureInfo(name, tensors(inputs), tensors(outputs))


IMAGE = _sig("default", {"default": ("float32", (None, 8, 8, 3))},
             {"default": ("float32", (None, 6))})
FEATURES = _sig("image_feature_vector",
                {"images": ("float32", (None, 8, 8, 3))},
                {"default": ("float32", (None, 6)),
                 "pre_logits": ("float32", (None, 4))})
TOKENS = _sig("tokens", {"tokens": ("string", (None, None)),
                         "sequence_len": ("int32", (None,))},
              {"word_emb": ("float32", (None, None, 4)),
               "sequence_output": ("float32", (None, None, 5))})
SERVING = _sig("serving_default", {"images": ("float32", (None, 8, 8, 3))},
               {"feature_vector": ("float32", (None, 5))})
SERVE_SIG = _sig("serve", {"features": ("float32", (None, 4)),
                           "context": ("float32", (None, 2))},
                 {"logits": ("float32", (None, 3)),
                  "probabilities": ("float32", (None, 3))})
ANY_SHAPE = _sig("default", {"default": ("float32", None)},
                 {"default": ("float32", None)})


def _tf1(sigs_by_tags):
  return ModelInfo(path="/models/m", format=Format.TF1_HUB,
                   tag_sets=tuple(sigs_by_tags),
                   signatures={t: {s.name: s for s in sigs}
                               for t, sigs in sigs_by_tags.items()})


def _tf2(sigs, has_call):
  return ModelInfo(path="/models/m", format=Format.TF2_SAVED_MODEL,
                   tag_sets=(SERVE,), signatures={SERVE: {s.name: s
                                                          for s in sigs}},
                   has_call=has_call, call_accepts_training=has_call)


TF1_IMAGE = _tf1({EMPTY: [IMAGE, FEATURES], TRAIN: [IMAGE, FEATURES]})
TF1_TOKENS = _tf1({EMPTY: [TOKENS]})
TF1_TWO_NO_DEFAULT = _tf1({EMPTY: [TOKENS, FEATURES]})


# -- tags -------------------------------------------------------------------

def test_default_tags_then_asked_tags():
  assert signatures.pick_tags(TF1_IMAGE, None) == EMPTY
  assert signatures.pick_tags(TF1_IMAGE, {"train"}) == TRAIN
  assert signatures.pick_tags(TF1_IMAGE, ["train"]) == TRAIN
  assert signatures.pick_tags(TF1_IMAGE, "train") == TRAIN
  assert signatures.pick_tags(_tf2([SERVING], True), None) == SERVE


def test_missing_tag_set_lists_the_tag_sets():
  with pytest.raises(errors.SignatureError) as caught:
    signatures.pick_tags(TF1_IMAGE, {"gpu"}, handle="h", mode=Mode.TF2)
  message = str(caught.value)
  assert "{'gpu'}" in message and "set(), {'train'}" in message
  assert "handle: h" in message and "mode: tf2" in message
  assert "format: tf1_hub" in message and "folder: /models/m" in message
  assert isinstance(caught.value, KeyError)  # TagSetError, as hub.Module


def test_tags_must_be_strings():
  with pytest.raises(errors.SignatureError, match="set of strings"):
    signatures.normalize_tags({1, 2})


# -- signatures -------------------------------------------------------------

def test_tf1_picks_asked_then_default_then_only():
  assert signatures.pick_signature(TF1_IMAGE, EMPTY, None) == "default"
  assert signatures.pick_signature(
      TF1_IMAGE, EMPTY, "image_feature_vector") == "image_feature_vector"
  assert signatures.pick_signature(TF1_TOKENS, EMPTY, None) == "tokens"


def test_tf1_asking_for_missing_default_lists_choices():
  with pytest.raises(errors.SignatureError) as caught:
    signatures.pick_signature(TF1_TOKENS, EMPTY, "default", handle="elmo")
  message = str(caught.value)
  assert "'default'" in message and "'tokens'" in message
  assert "elmo" in message
  assert caught.value.choices == ("tokens",)


def test_tf1_several_without_default_is_ambiguous():
  with pytest.raises(errors.SignatureError) as caught:
    signatures.pick_signature(TF1_TWO_NO_DEFAULT, EMPTY, None)
  assert "'image_feature_vector', 'tokens'" in str(caught.value)
  assert "none of them is 'default'" in str(caught.value)


def test_tf2_prefers_call_then_serving_default_then_only():
  assert signatures.pick_signature(_tf2([SERVING], True), SERVE, None) is None
  assert signatures.pick_signature(
      _tf2([SERVING, SERVE_SIG], False), SERVE, None) == "serving_default"
  assert signatures.pick_signature(
      _tf2([SERVE_SIG], False), SERVE, None) == "serve"
  assert signatures.pick_signature(
      _tf2([SERVING], True), SERVE, "serving_default") == "serving_default"
  assert signatures.pick_signature(
      _tf2([SERVING], True), SERVE, "__call__") is None


def test_tf2_errors_list_call_among_choices():
  with pytest.raises(errors.SignatureError) as caught:
    signatures.pick_signature(_tf2([SERVING], True), SERVE, "embed")
  assert caught.value.choices == ("__call__", "serving_default")
  with pytest.raises(errors.SignatureError, match="no __call__"):
    signatures.pick_signature(_tf2([SERVING], False), SERVE, "__call__")
  with pytest.raises(errors.SignatureError, match="picked automatically"):
    signatures.pick_signature(
        _tf2([SERVE_SIG, FEATURES], False), SERVE, None)
  with pytest.raises(errors.SignatureError, match="no signatures"):
    signatures.pick_signature(_tf2([], False), SERVE, None)


# -- outputs ----------------------------------------------------------------

def test_output_checks():
  signatures.check_outputs(FEATURES, "pre_logits", None)
  signatures.check_outputs(FEATURES, None, True)
  signatures.check_outputs(SERVE_SIG, None, None)
  signatures.check_outputs(None, None, None)
  with pytest.raises(errors.SignatureError) as caught:
    signatures.check_outputs(FEATURES, "logits", None, signature="x")
  assert caught.value.choices == ("default", "pre_logits")
  with pytest.raises(errors.SignatureError, match="both given"):
    signatures.check_outputs(FEATURES, "default", True)
  with pytest.raises(errors.SignatureError, match="needs a signature"):
    signatures.check_outputs(None, None, True)
  with pytest.raises(errors.SignatureError, match="'logits', 'probabilities'"):
    signatures.check_outputs(SERVE_SIG, None, False)


def test_output_selection_rule():
  outputs = {"default": 1, "pre_logits": 2}
  assert signatures.select_output(outputs, None, None) == 1
  assert signatures.select_output(outputs, "pre_logits", None) == 2
  assert signatures.select_output(outputs, None, True) == outputs
  assert signatures.select_output({"only": 3}, None, None) == 3
  two = {"logits": 1, "probabilities": 2}
  assert signatures.select_output(two, None, None) == two
  assert signatures.select_output(5, None, None) == 5


# -- inputs -----------------------------------------------------------------

def test_bare_input_for_single_input_signature_is_converted():
  feed = signatures.prepare_inputs(IMAGE, np.zeros((2, 8, 8, 3)))
  assert list(feed) == ["default"]
  assert feed["default"].dtype.name == "float32"
  feed = signatures.prepare_inputs(ANY_SHAPE, 3.0)
  assert feed["default"].shape.rank == 0


def test_dict_and_keyword_inputs():
  tokens = np.array([["a", "b"]])
  feed = signatures.prepare_inputs(
      TOKENS, {"tokens": tokens}, {"sequence_len": [2]})
  assert sorted(feed) == ["sequence_len", "tokens"]
  assert feed["tokens"].dtype.name == "string"
  assert feed["sequence_len"].dtype.name == "int32"


def test_wrong_names_list_expected_inputs():
  with pytest.raises(errors.InputError) as caught:
    signatures.prepare_inputs(TOKENS, {"tokens": [["a"]], "lengths": [1]},
                              facts={"handle": "elmo"})
  message = str(caught.value)
  assert "missing 'sequence_len'" in message and "unknown 'lengths'" in message
  assert "sequence_len: int32[None]" in message
  assert "tokens: string[None, None]" in message
  assert "handle: elmo" in message
  with pytest.raises(errors.InputError, match="2 inputs"):
    signatures.prepare_inputs(TOKENS, [["a"]])


def test_wrong_dtype_and_shape():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.InputError) as caught:
    signatures.prepare_inputs(IMAGE, tf.zeros([1, 8, 8, 3], tf.int32))
  assert isinstance(caught.value, TypeError)
  assert "int32" in str(caught.value) and "float32" in str(caught.value)
  with pytest.raises(errors.InputError, match="cannot be converted"):
    signatures.prepare_inputs(IMAGE, [["text"]])
  with pytest.raises(errors.InputError, match="shape"):
    signatures.prepare_inputs(IMAGE, np.zeros((2, 4, 4, 3), np.float32))
