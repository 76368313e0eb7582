"""hub_adapter.load(): resolve -> inspect -> check -> table -> validate ->
backend. Validation errors come before anything is loaded."""
import importlib
import os
import pathlib

import numpy as np
import pytest

import hub_adapter
from hub_adapter import errors
from hub_adapter import loading
from hub_adapter import support
from hub_adapter.support import Format, Mode, Operation

tf1_compat = pytest.mark.tf1_compat


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _info(path):
  return importlib.import_module("hub_adapter.inspection").inspect_folder(path)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  """Archives extract into a private cache, never the user's."""
  with pytest.MonkeyPatch.context() as patch:
    path = str(tmp_path_factory.mktemp("tfhub_cache"))
    patch.setenv("TFHUB_CACHE_DIR", path)
    yield path


def test_load_is_the_public_name():
  assert hub_adapter.load is loading.load


def test_plan_picks_tags_signature_and_train_tags(shared_fixtures):
  path = shared_fixtures.path("tf1_image_feature_vector")
  request = loading.plan(path, path, _info(path), Mode.TF2, Operation.LOAD)
  assert request.tags == frozenset()
  assert request.signature == "default"
  assert request.train_tags == frozenset({"train"})
  assert not request.trainable
  path = shared_fixtures.path("tf2_signatures_only")
  request = loading.plan(path, path, _info(path), Mode.TF2, Operation.LOAD,
                         output_key="logits")
  assert (request.tags, request.signature, request.train_tags,
          request.output_key) == (frozenset({"serve"}), "serving_default",
                                  None, "logits")


@pytest.mark.parametrize("kwargs, match", [
    ({"signature": "embedding"}, "'embed', 'serve', 'serving_default'"),
    ({"tags": {"train"}}, r"\{'serve'\}"),
    ({"output_key": "scores"}, "'logits', 'probabilities'"),
    ({"output_key": "logits", "as_dict": True}, "both given"),
])
def test_bad_requests_fail_before_anything_is_built(shared_fixtures, kwargs,
                                                    match):
  tf = _tf()
  path = shared_fixtures.path("tf2_signatures_only")
  with tf.Graph().as_default() as graph:
    with pytest.raises(errors.SignatureError, match=match) as caught:
      hub_adapter.load(path, **kwargs)
    assert graph.get_operations() == []  # nothing was loaded
  message = str(caught.value)
  for fact in (f"handle: {path}", f"folder: {path}",
               "format: tf2_saved_model", "mode: tf1_compat", "Fix: "):
    assert fact in message


def test_unsupported_cell_comes_from_the_table(shared_fixtures):
  path = shared_fixtures.path("half_plus_two_v1")
  with pytest.raises(errors.UnsupportedOperationError) as caught:
    hub_adapter.load(path, trainable=True)
  cell = support.lookup(Format.TF1_HUB, Operation.FINE_TUNE, Mode.TF2)
  assert caught.value.reason == cell.reason
  assert caught.value.remedy == cell.remedy
  assert path in str(caught.value)


def test_hub_load_style_positional_tags(shared_fixtures):
  path = shared_fixtures.path("tf1_image_feature_vector")
  model = hub_adapter.load(path, {"train"})
  assert model.tags == frozenset({"train"}) and not model.trainable
  assert hub_adapter.load(path, []).tags == frozenset()
  with pytest.raises(errors.SignatureError, match="given twice"):
    hub_adapter.load(path, {"train"}, tags={"train"})


def test_path_like_handle(shared_fixtures):
  path = pathlib.Path(shared_fixtures.path("half_plus_two_v1"))
  model = hub_adapter.load(path)
  assert model.handle == str(path)
  assert float(model(4.0)) == 4.0


def test_archive_handle(shared_fixtures, cache_dir):
  model = hub_adapter.load(shared_fixtures.archive("tf2_text_vocab_asset"))
  assert model.path.startswith(cache_dir)
  case = shared_fixtures.cases("tf2_text_vocab_asset", "call")[0]
  case.assert_outputs({"output": model(case.inputs()["inputs"])})


def test_missing_folder_is_a_handle_error(tmp_path):
  with pytest.raises(errors.HandleError):
    hub_adapter.load(str(tmp_path / "nothing_here"))


def _write_file_reader(path):
  tf = _tf()

  class Reader(tf.Module):

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def __call__(self, name):
      return tf.io.read_file(name)

  tf.saved_model.save(Reader(), path)
  return path


def test_safe_refuses_models_that_read_files(shared_fixtures, tmp_path):
  path = _write_file_reader(str(tmp_path / "reader"))
  with pytest.raises(errors.UnsafeModelError, match="ReadFile"):
    hub_adapter.load(path, safe=True)
  assert hub_adapter.load(path).signature is None  # safe=False loads it
  model = hub_adapter.load(shared_fixtures.path("tf2_text_vocab_asset"),
                           safe=True)
  assert model(np.array(["the cat"])).shape == (1, 8)


def test_load_under_a_distribution_strategy(shared_fixtures):
  tf = _tf()
  strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
  with strategy.scope():
    model = hub_adapter.load(shared_fixtures.path("tf2_image_bn_reusable"))
  case = shared_fixtures.cases("tf2_image_bn_reusable", "call")[0]
  case.assert_outputs({"output": model(case.inputs()["inputs"],
                                       training=False)})


@tf1_compat
def test_mode_is_read_at_load_time(shared_fixtures):
  model = hub_adapter.load(shared_fixtures.path("tf2_text_vocab_asset"))
  assert model.mode is Mode.TF1_COMPAT
  assert os.path.basename(model.path) == "tf2_text_vocab_asset"


def test_positional_tags_and_options_as_in_hub_load(shared_fixtures):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = shared_fixtures.path("tf2_image_bn_reusable")
  options = tf.saved_model.LoadOptions()
  model = hub_adapter.load(path, None, options)
  assert model._request.options is options  # pylint: disable=protected-access
  assert not model.trainable
  case = shared_fixtures.cases("tf2_image_bn_reusable", "call")[0]
  np.testing.assert_allclose(
      model(case.inputs()["inputs"], training=False),
      case.outputs()["output"], rtol=1e-5, atol=1e-5)


def test_unknown_signature_says_what_why_and_fix(shared_fixtures):
  with pytest.raises(errors.SignatureError) as caught:
    hub_adapter.load(shared_fixtures.path("tf1_tokens_signature_only"),
                     signature="default")
  lines = str(caught.value).splitlines()
  assert lines[1].startswith("Why: ") and lines[2] == (
      "Fix: Pass signature= one of: 'tokens'.")
