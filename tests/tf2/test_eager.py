"""TF2 SavedModels in TF2 mode (hub_adapter.tf2.eager) through
hub_adapter.load: calling, training, signatures, variables, errors."""

import numpy as np
import pytest

# pylint: disable=g-import-not-at-top,wrong-import-position
import tf2_models

import hub_adapter
from hub_adapter import errors
from hub_adapter.tf2 import common
from hub_adapter.tf2 import eager


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  return tf2_models.make_tiny(str(tmp_path_factory.mktemp("tiny") / "m"))


@pytest.fixture(scope="module")
def signatures_only(shared_fixtures):
  return hub_adapter.load(shared_fixtures.path("tf2_signatures_only"))


def _moving_mean(model):
  return [v.numpy() for v in model.variables
          if v.name.startswith("bn1/moving_mean")][0]


def test_call_passes_training_and_updates_state_only_in_training(
    shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path("tf2_image_bn_reusable"))
  assert isinstance(model, eager.EagerSavedModel)
  assert model.signature is None
  case = shared_fixtures.cases("tf2_image_bn_reusable", "call")[0]
  x = case.inputs()["inputs"]
  before = _moving_mean(model)
  np.testing.assert_allclose(model(x), model(x, training=False))
  np.testing.assert_array_equal(_moving_mean(model), before)
  model(x, training=True)
  assert not np.allclose(_moving_mean(model), before)


def test_training_is_dropped_where_call_has_no_training_argument(
    shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path("tf2_text_vocab_asset"))
  sentences = np.array(["the cat", ""])
  np.testing.assert_allclose(model(sentences, training=True),
                             model(sentences))
  assert model(sentences).shape == (2, 8)


def test_signatures_only_model_takes_and_returns_dicts(
    shared_fixtures, signatures_only):
  assert signatures_only.signature == "serving_default"
  case = shared_fixtures.cases("tf2_signatures_only", "signature")[0]
  outputs = signatures_only(case.inputs())
  assert sorted(outputs) == ["logits", "probabilities"]
  case.assert_outputs(outputs)
  # Keyword inputs work as for the signature itself.
  case.assert_outputs(signatures_only(**case.inputs()))


def test_output_key_as_dict_and_single_output(shared_fixtures):
  path = shared_fixtures.path("tf2_signatures_only")
  case = shared_fixtures.cases("tf2_signatures_only", "signature")[0]
  probabilities = hub_adapter.load(path, output_key="probabilities")(
      case.inputs())
  np.testing.assert_allclose(probabilities,
                             case.outputs()["probabilities"], atol=1e-5)
  embed_case = [c for c in shared_fixtures.cases("tf2_signatures_only")
                if c.id == "signature_embed"][0]
  embedding = hub_adapter.load(path, signature="embed")(embed_case.inputs())
  np.testing.assert_allclose(embedding, embed_case.outputs()["embedding"],
                             atol=1e-5)
  as_dict = hub_adapter.load(path, signature="embed", as_dict=True)
  assert list(as_dict(embed_case.inputs())) == ["embedding"]


def test_signature_input_errors_list_expected_inputs(signatures_only):
  with pytest.raises(errors.InputError) as caught:
    signatures_only(np.zeros((2, 4), np.float32))
  message = str(caught.value)
  assert "context: float32[None, 2]" in message
  assert "features: float32[None, 4]" in message
  assert "signature: serving_default" in message
  with pytest.raises(errors.InputError, match="missing 'context'"):
    signatures_only({"features": np.zeros((2, 4), np.float32)})
  tf = _tf()
  with pytest.raises(errors.InputError) as caught:
    signatures_only({"features": tf.zeros([2, 4], tf.float64),
                     "context": tf.zeros([2, 2])})
  assert isinstance(caught.value, TypeError)


def test_call_input_errors_list_traced_inputs(shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path("tf2_image_bn_reusable"))
  with pytest.raises(errors.InputError) as caught:
    model(np.zeros((2, 4), np.float32))
  assert "(None, 8, 8, 3)" in str(caught.value)
  assert "tf2_image_bn_reusable" in str(caught.value)


def test_trainable_controls_trainable_variables(shared_fixtures):
  path = shared_fixtures.path("tf2_image_bn_reusable")
  frozen = hub_adapter.load(path)
  assert len(frozen.variables) == 7
  assert frozen.trainable_variables == []
  assert len(frozen.non_trainable_variables) == 7
  tuned = hub_adapter.load(path, trainable=True)
  names = sorted(v.name for v in tuned.trainable_variables)
  assert names == ["bn1/beta:0", "bn1/gamma:0", "conv1/kernel:0",
                   "head/bias:0", "head/kernel:0"]


def test_fine_tune_with_gradient_tape_lowers_the_loss(shared_fixtures):
  tf = _tf()
  model = hub_adapter.load(shared_fixtures.path("tf2_keras_savedmodel"),
                           trainable=True)
  x = tf.constant(np.random.RandomState(0).rand(8, 6).astype(np.float32))
  losses = []
  for _ in range(4):
    with tf.GradientTape() as tape:
      y = model(x, training=False)
      loss = tf.reduce_mean(tf.square(y - 1.0)) + tf.add_n(
          [f() for f in model.regularization_losses])
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    for var, grad in zip(model.trainable_variables, grads):
      var.assign_sub(0.1 * grad)
    losses.append(float(loss))
  assert losses[-1] < losses[0], losses


def test_regularization_losses_are_callables_like_hub_load(shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path("tf2_image_bn_reusable"))
  case = shared_fixtures.cases("tf2_image_bn_reusable",
                               "regularization_losses")[0]
  assert all(callable(f) for f in model.regularization_losses)
  np.testing.assert_allclose([float(f()) for f in model.regularization_losses],
                             case.spec["values"], rtol=1e-5)
  text = hub_adapter.load(shared_fixtures.path("tf2_text_vocab_asset"))
  assert text.regularization_losses == []
  assert text.update_ops == []


def test_unknown_attributes_fall_through_to_raw(shared_fixtures,
                                                signatures_only):
  assert signatures_only.embed is signatures_only.raw.embed
  assert signatures_only.signatures is signatures_only.raw.signatures
  assert getattr(signatures_only.raw, "_is_hub_module_v1") is False
  text = hub_adapter.load(shared_fixtures.path("tf2_text_vocab_asset"))
  assert text.table is text.raw.table
  with pytest.raises(AttributeError):
    _ = text.no_such_attribute


def test_plain_module_without_variables_attribute(tiny):
  tf = _tf()
  model = hub_adapter.load(tiny, trainable=True)
  assert sorted(v.name for v in model.variables) == ["b:0", "calls:0",
                                                      "w:0"]
  assert sorted(v.name for v in model.trainable_variables) == ["b:0", "w:0"]
  result = model(tf2_models.INPUT)
  np.testing.assert_allclose(result["y"], tf2_models.expected_y())
  calls = [v for v in model.variables if v.name == "calls:0"][0]
  model(tf2_models.INPUT, training=True)
  assert float(calls.numpy()) == 1.0
  model(tf2_models.INPUT, training=tf.constant(False))
  assert float(calls.numpy()) == 1.0
  picked = hub_adapter.load(tiny, output_key="double")(tf2_models.INPUT)
  np.testing.assert_allclose(picked, 2 * tf2_models.expected_y())


def test_output_key_missing_from_call_fails_at_load(tiny):
  with pytest.raises(errors.SignatureError) as caught:
    hub_adapter.load(tiny, output_key="logits")
  assert "'double', 'y'" in str(caught.value)


def test_load_options_pass_through_and_strategy_default(shared_fixtures):
  tf = _tf()
  given = tf.saved_model.LoadOptions(experimental_io_device="/job:localhost")
  assert common.load_options(given) is given
  assert common.load_options(None) is None
  path = shared_fixtures.path("tf2_text_vocab_asset")
  model = hub_adapter.load(path, options=given)
  assert model._request.options is given  # pylint: disable=protected-access
  strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
  with strategy.scope():
    picked = common.load_options(None)
    assert picked.experimental_io_device == "/job:localhost"
    model = hub_adapter.load(path)
  assert model(np.array(["the cat"])).shape == (1, 8)


def test_backends_refuse_requests_load_would_not_route_to_them(
    shared_fixtures):
  import importlib  # pylint: disable=g-import-not-at-top
  from hub_adapter import loading  # pylint: disable=g-import-not-at-top
  from hub_adapter.support import Mode, Operation  # pylint: disable=g-import-not-at-top
  from hub_adapter.tf2 import graph, tf1_signatures  # pylint: disable=g-import-not-at-top
  inspection = importlib.import_module("hub_adapter.inspection")
  path = shared_fixtures.path("tf1_image_feature_vector")
  info = inspection.inspect_folder(path)
  graph_request = loading.plan(path, path, info, Mode.TF1_COMPAT,
                               Operation.LOAD)
  tf2_finetune = loading.plan(path, path, info, Mode.TF2, Operation.FINE_TUNE)
  cases = [(eager.load, graph_request, "TF2 cells"),
           (tf1_signatures.load, tf2_finetune, "TF1 Hub load/infer cell"),
           (graph.load, tf2_finetune, "TF1 compat cells")]
  for backend, request, serves in cases:
    with pytest.raises(errors.HubAdapterError) as caught:
      backend(request)
    message = str(caught.value)
    assert serves in message and "hub_adapter.load()" in message
