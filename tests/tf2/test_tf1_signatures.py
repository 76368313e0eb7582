"""TF1 Hub modules in TF2 mode (hub_adapter.tf2.tf1_signatures) through
hub_adapter.load: signature picking, inputs, the train variant, refusals."""
import numpy as np
import pytest

import hub_adapter
from hub_adapter import errors
from hub_adapter.support import Format, Mode, Operation
from hub_adapter.tf2 import tf1_signatures


@pytest.fixture(scope="module")
def image(shared_fixtures):
  return hub_adapter.load(shared_fixtures.path("tf1_image_feature_vector"))


@pytest.fixture(scope="module")
def tokens(shared_fixtures):
  return hub_adapter.load(shared_fixtures.path("tf1_tokens_signature_only"))


def _case(shared_fixtures, name, case_id):
  return [c for c in shared_fixtures.cases(name) if c.id == case_id][0]


def test_default_signature_with_bare_input(shared_fixtures, image):
  assert isinstance(image, tf1_signatures.TF1SignaturesModel)
  assert image.signature == "default" and image.tags == frozenset()
  case = _case(shared_fixtures, "tf1_image_feature_vector",
               "tf2_hubload_infer_default")
  np.testing.assert_allclose(image(case.inputs()["default"]),
                             case.outputs()["default"], atol=1e-5)
  np.testing.assert_allclose(image(case.inputs()),  # dict form works too
                             case.outputs()["default"], atol=1e-5)


def test_training_true_applies_the_train_variant(shared_fixtures, image):
  case = _case(shared_fixtures, "tf1_image_feature_vector",
               "tf2_hubload_train_default")
  x = case.inputs()["default"]
  np.testing.assert_allclose(image(x, training=True),
                             case.outputs()["default"], atol=1e-5)
  assert not np.allclose(image(x, training=True), image(x, training=False))


def test_only_signature_is_picked_and_takes_a_dict(shared_fixtures, tokens):
  assert tokens.signature == "tokens"
  case = shared_fixtures.cases("tf1_tokens_signature_only",
                               "hub.load.signatures")[0]
  # Three outputs, one named 'default': that one is returned.
  np.testing.assert_allclose(tokens(case.inputs()), case.outputs()["default"],
                             atol=1e-5)
  as_dict = hub_adapter.load(
      shared_fixtures.path("tf1_tokens_signature_only"), as_dict=True)
  case.assert_outputs(as_dict(case.inputs()))
  word_emb = hub_adapter.load(
      shared_fixtures.path("tf1_tokens_signature_only"),
      output_key="word_emb")(case.inputs())
  np.testing.assert_allclose(word_emb, case.outputs()["word_emb"], atol=1e-5)


def test_asking_for_default_lists_the_signatures(shared_fixtures):
  with pytest.raises(errors.SignatureError) as caught:
    hub_adapter.load(shared_fixtures.path("tf1_tokens_signature_only"),
                     signature="default")
  message = str(caught.value)
  assert "'default'" in message and "'tokens'" in message
  assert "format: tf1_hub" in message and "mode: tf2" in message


def test_wrong_input_names_list_the_expected_inputs(tokens):
  with pytest.raises(errors.InputError) as caught:
    tokens({"tokens": [["a", "b"]], "length": [2]})
  message = str(caught.value)
  assert "sequence_len: int32[None]" in message
  assert "tokens: string[None, None]" in message


def test_fine_tuning_is_refused_before_loading(shared_fixtures):
  path = shared_fixtures.path("tf1_image_feature_vector")
  with pytest.raises(errors.UnsupportedOperationError) as caught:
    hub_adapter.load(path, trainable=True)
  error = caught.value
  assert (error.format, error.mode, error.operation) == (
      Format.TF1_HUB, Mode.TF2, Operation.FINE_TUNE)
  assert error.handle == path
  assert "disable_v2_behavior" in str(error)
  assert isinstance(error, NotImplementedError)


def test_frozen_attributes_match_hub_load_view(shared_fixtures, image):
  view = shared_fixtures.entry("tf1_image_feature_vector")[
      "tf2_hub_load_view"][0]
  assert sorted(v.name for v in image.variables) == sorted(view["variables"])
  assert image.trainable_variables == []
  assert image.regularization_losses == []
  assert image.update_ops == []
  assert sorted(image.signatures) == sorted(view["signatures"])
  assert getattr(image.raw, "_is_hub_module_v1") is True
  assert image.prune is image.raw.prune  # falls through to the raw object


def test_train_tags_explicitly(shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path("tf1_image_feature_vector"),
                           tags={"train"}, signature="image_feature_vector",
                           as_dict=True)
  assert model.tags == frozenset({"train"})
  case = _case(shared_fixtures, "tf1_image_feature_vector",
               "tf2_hubload_train_image_feature_vector")
  case.assert_outputs(model(case.inputs()))
  with pytest.raises(errors.SignatureError, match=r"set\(\), \{'train'\}"):
    hub_adapter.load(shared_fixtures.path("tf1_image_feature_vector"),
                     tags={"gpu"})


def test_unknown_rank_input_accepts_a_scalar(shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path("half_plus_two_v1"))
  assert float(model(10.0)) == 7.0
  np.testing.assert_allclose(model([[1.0, 2.0]]), [[2.5, 3.0]])


# -- sparse and ragged inputs (tf1_sparse_ragged_inputs) -----------------------

COMPOSITE = "tf1_sparse_ragged_inputs"


def _composite_cases(shared_fixtures, signature):
  return [c for c in shared_fixtures.cases(COMPOSITE, "hub.load.signatures")
          if c.spec["signature"] == signature]


def _sparse(case):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = case.inputs()
  return tf.SparseTensor(x["ids_indices"], x["ids_values"],
                         x["ids_dense_shape"])


def _ragged(case):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = case.inputs()
  return tf.RaggedTensor.from_row_splits(x["ids_component_0"],
                                         x["ids_component_1"])


def test_sparse_input_takes_a_sparse_tensor(shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path(COMPOSITE))
  assert model.signature == "default"
  spec = model.info.signatures_for()["default"].inputs["ids"]
  assert spec.kind == "sparse" and spec.dtype == "int64"
  cases = _composite_cases(shared_fixtures, "default")
  assert len(cases) == 2
  for case in cases:
    want = case.outputs()["default"]
    np.testing.assert_allclose(model(_sparse(case)), want, atol=1e-5)
    np.testing.assert_allclose(model({"ids": _sparse(case)}), want,
                               atol=1e-5)
    # The components, as hub.load's signature takes them, work too.
    np.testing.assert_allclose(model(case.inputs()), want, atol=1e-5)


def test_ragged_input_takes_a_ragged_tensor_or_lists(shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path(COMPOSITE),
                           signature="ragged")
  spec = model.info.signatures_for()["ragged"].inputs["ids"]
  assert (spec.kind, spec.ragged_rank, spec.row_splits_dtype) == (
      "ragged", 1, "int64")
  for case in _composite_cases(shared_fixtures, "ragged"):
    want = case.outputs()["default"]
    ragged = _ragged(case)
    np.testing.assert_allclose(model(ragged), want, atol=1e-5)
    np.testing.assert_allclose(model(ragged.to_list()), want, atol=1e-5)
    np.testing.assert_allclose(model(case.inputs()), want, atol=1e-5)


def test_composite_inputs_match_tensorflow_hub(shared_fixtures):
  from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
  reference = import_tensorflow_hub().load(shared_fixtures.path(COMPOSITE))
  ours = hub_adapter.load(shared_fixtures.path(COMPOSITE))
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for name, build in (("default", _sparse), ("ragged", _ragged)):
    for case in _composite_cases(shared_fixtures, name):
      # TF 2.15's pruned functions take tensors only, not numpy arrays.
      components = {k: tf.constant(v) for k, v in case.inputs().items()}
      want = reference.signatures[name](**components)["default"]
      got = hub_adapter.load(shared_fixtures.path(COMPOSITE),
                             signature=name)(build(case))
      np.testing.assert_array_equal(got.numpy(), want.numpy())
      # The signatures mapping is tf.saved_model.load's, as in hub.load.
      np.testing.assert_array_equal(
          ours.signatures[name](**components)["default"].numpy(),
          want.numpy())


def test_wrong_kind_of_input_names_the_input_and_the_kind(shared_fixtures):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  sparse = hub_adapter.load(shared_fixtures.path(COMPOSITE))
  ragged = hub_adapter.load(shared_fixtures.path(COMPOSITE),
                            signature="ragged")
  dense = tf.constant([[1, 2], [3, 4]], tf.int64)
  with pytest.raises(errors.InputError) as e:
    sparse(dense)
  assert "Input 'ids' is a dense tensor" in str(e.value)
  assert "declares a tf.SparseTensor" in str(e.value)
  assert "tf.sparse.from_dense" in str(e.value)
  assert e.value.input == "ids" and e.value.kind == "sparse"
  assert "signature: default" in str(e.value)
  with pytest.raises(errors.InputError) as e:
    sparse(tf.ragged.constant([[1, 2], [3]], tf.int64))
  assert "is a tf.RaggedTensor" in str(e.value)
  with pytest.raises(errors.InputError) as e:
    ragged(dense)
  assert "declares a tf.RaggedTensor" in str(e.value)
  assert e.value.kind == "ragged"
  with pytest.raises(errors.InputError) as e:
    ragged(tf.ragged.constant([[[1], [2]], [[3]]], tf.int64, ragged_rank=2))
  assert "ragged_rank 2" in str(e.value) and "ragged_rank 1" in str(e.value)
  with pytest.raises(errors.InputTypeError) as e:
    sparse(tf.sparse.from_dense(tf.constant([[1.0, 0.0]])))
  assert "dtype float32" in str(e.value) and "int64" in str(e.value)
