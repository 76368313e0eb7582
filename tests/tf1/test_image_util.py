"""hub_adapter.tf1.image_util: expected image size and channels."""
from __future__ import annotations

import pytest

import fixtures
from hub_adapter import errors
from hub_adapter.tf1 import hub_protos
from hub_adapter.tf1 import image_util
from hub_adapter.tf1 import spec as spec_lib

SHARED = fixtures.locate()
ATTACH = "tf1_image_with_attachments"
IMAGE = "tf1_image_feature_vector"


def _spec(name):
  return spec_lib.load_module_spec(SHARED.path(name))


def _without_attachments(spec):
  saved_model = type(spec.saved_model)()
  saved_model.CopyFrom(spec.saved_model)
  for meta_graph in saved_model.meta_graphs:
    del meta_graph.collection_def[hub_protos.ATTACHMENT_COLLECTION]
  return spec_lib.NativeModuleSpec(saved_model, module_dir=spec.module_dir)


def test_helpers_match_manifest():
  helpers = SHARED.entry(ATTACH)["image_helpers"]
  spec = _spec(ATTACH)
  assert image_util.get_expected_image_size(spec) == helpers[
      "hub.get_expected_image_size(spec)"]
  assert image_util.get_num_image_channels(
      spec, signature="image_classification") == helpers[
          "hub.get_num_image_channels(spec, signature='image_classification')"]


def test_size_from_input_shape_without_attachment():
  spec = _spec(IMAGE)
  assert image_util.get_image_module_info(spec) is None
  assert image_util.get_expected_image_size(
      spec, signature="image_feature_vector") == [8, 8]
  # The single input of "default" is named "default", not "images".
  assert image_util.get_expected_image_size(spec) == [8, 8]
  assert image_util.get_num_image_channels(spec) == 3


def test_unknown_size_without_attachment():
  spec = _without_attachments(_spec(ATTACH))
  with pytest.raises(errors.InputError, match="height and width") as info:
    image_util.get_expected_image_size(spec, signature="image_classification")
  assert isinstance(info.value, ValueError)
  assert image_util.get_num_image_channels(spec) == 3


def test_required_image_module_info():
  with pytest.raises(KeyError):
    image_util.get_image_module_info(_spec(IMAGE), required=True)
  info = image_util.get_image_module_info(_spec(ATTACH), required=True)
  assert info.default_image_size.height == 6


def test_missing_or_non_image_input():
  spec = _spec(IMAGE)
  with pytest.raises(errors.InputError, match="'pixels'") as info:
    image_util.get_expected_image_size(spec, signature="image_feature_vector",
                                       input_name="pixels")
  assert "'images'" in str(info.value)
  with pytest.raises(ValueError, match="4-D|\\[batch_size"):
    image_util.get_num_image_channels(
        spec, signature="image_feature_vector_with_bn_hparams",
        input_name="batch_norm_momentum")
  text = _spec("tf1_text_embedding")
  with pytest.raises(errors.InputError):
    image_util.get_expected_image_size(text)


def test_half_plus_two_has_no_image_shape():
  with pytest.raises(errors.InputError, match="unknown rank|batch_size"):
    image_util.get_num_image_channels(_spec("half_plus_two_v1"))


@pytest.mark.tf1_compat
def test_helpers_accept_a_module():
  from hub_adapter.tf1.module import Module
  module = Module(SHARED.path(ATTACH))
  assert image_util.get_expected_image_size(module) == [6, 6]
  assert image_util.get_num_image_channels(
      module, signature="image_classification") == 3
