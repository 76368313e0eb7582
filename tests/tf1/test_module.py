"""hub_adapter.tf1.module.Module: state, calls, scopes, assets, inputs."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import fixtures
from hub_adapter import errors
from hub_adapter.tf1 import spec as spec_lib
from hub_adapter.tf1.module import Module

SHARED = fixtures.locate()
HALF = "half_plus_two_v1"
TEXT = "tf1_text_embedding"
IMAGE = "tf1_image_feature_vector"
TOKENS = "tf1_tokens_signature_only"
ATTACH = "tf1_image_with_attachments"
keys = tf.compat.v1.GraphKeys
tf1 = pytest.mark.tf1_compat


def _init(session):
  session.run([tf.compat.v1.global_variables_initializer(),
               tf.compat.v1.tables_initializer()])


def _first_case(name, **match):
  for case in SHARED.cases(name, "hub.Module"):
    if all(case.spec.get(k) == v for k, v in match.items()):
      return case
  raise AssertionError(f"no case {match} in {name}")


# State -----------------------------------------------------------------------
@tf1
def test_variable_map_groups_partitions():
  module = Module(SHARED.path(TEXT))
  parts = module.variable_map["embeddings"]
  assert isinstance(parts, list)
  assert [p.op.name for p in parts] == ["module/embeddings/part_0",
                                        "module/embeddings/part_1"]
  assert [p.shape.as_list() for p in parts] == [[11, 8], [11, 8]]
  assert module.variables == parts


@tf1
@pytest.mark.parametrize("trainable", [False, True])
def test_trainable_decides_collections(trainable):
  module = Module(SHARED.path(IMAGE), trainable=trainable)
  assert len(tf.compat.v1.global_variables()) == 9
  want = 7 if trainable else 0
  assert len(tf.compat.v1.trainable_variables()) == want
  assert len(module.trainable_variables) == want
  assert len(tf.compat.v1.get_collection(keys.REGULARIZATION_LOSSES)) == (
      2 if trainable else 0)
  assert module.regularization_losses == tf.compat.v1.get_collection(
      keys.REGULARIZATION_LOSSES)


@tf1
def test_instances_are_independent_and_calls_share_variables():
  first = Module(SHARED.path(HALF))
  second = Module(SHARED.path(HALF))
  assert (first.name, second.name) == ("module", "module_1")
  x = tf.constant([1.0, 2.0])
  y1, y1_again, y2 = first(x), first(x), second(x)
  assert y1.name.startswith("module_apply_default/")
  assert y1_again.name.startswith("module_apply_default_1/")
  assert y2.name.startswith("module_1_apply_default/")
  assert len(tf.compat.v1.global_variables()) == 4
  set_a = first.variable_map["a"].assign(10.0)
  with tf.compat.v1.Session() as session:
    _init(session)
    np.testing.assert_allclose(session.run([y1, y1_again, y2]),
                               [[2.5, 3.0]] * 3)
    session.run(set_a)
    a, b, c = session.run([y1, y1_again, y2])
  np.testing.assert_allclose(a, [12.0, 22.0])
  np.testing.assert_allclose(b, [12.0, 22.0])
  np.testing.assert_allclose(c, [2.5, 3.0])


@tf1
def test_tables_need_tables_initializer():
  case = _first_case(TEXT)
  module = Module(SHARED.path(TEXT))
  out = module(case.inputs()["sentences"])
  assert len(tf.compat.v1.get_collection(keys.TABLE_INITIALIZERS)) == 1
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    with pytest.raises(tf.errors.FailedPreconditionError):
      session.run(out)
    session.run(tf.compat.v1.tables_initializer())
    case.assert_outputs({"default": session.run(out)})


@tf1
def test_assets_follow_a_moved_and_renamed_folder(tmp_path):
  case = _first_case(TEXT)
  first = tmp_path / "first"
  shutil.copytree(SHARED.path(TEXT), first)
  moved = tmp_path / "renamed_module"
  os.rename(first, moved)
  module = Module(str(moved))
  want = str(moved / "assets" / "tokens.txt")
  assert list(module.asset_paths.values()) == [want]
  constants = [t for t in tf.compat.v1.get_collection(keys.ASSET_FILEPATHS)]
  out = module(case.inputs()["sentences"])
  with tf.compat.v1.Session() as session:
    _init(session)
    assert [session.run(t) for t in constants] == [want.encode()]
    case.assert_outputs({"default": session.run(out)})


@tf1
def test_spec_decides_asset_paths_when_built(tmp_path):
  """A spec read before a move keeps the folder it was read from."""
  copy = tmp_path / "copy"
  shutil.copytree(SHARED.path(TEXT), copy)
  spec = spec_lib.load_module_spec(str(copy))
  assert spec.module_dir == str(copy)
  module = Module(spec)
  assert list(module.asset_paths.values()) == [
      str(copy / "assets" / "tokens.txt")]


# Scopes and graph contexts ----------------------------------------------------
@tf1
def test_under_variable_scope():
  case = _first_case(HALF)
  with tf.compat.v1.variable_scope("outer"):
    module = Module(SHARED.path(HALF))
    out = module(case.inputs(), as_dict=True)
  assert sorted(v.op.name for v in module.variables) == ["outer/module/a",
                                                        "outer/module/b"]
  assert sorted(module.variable_map) == ["a", "b"]
  assert out["default"].name.startswith("outer/module_apply_default/")
  with tf.compat.v1.Session() as session:
    _init(session)
    case.assert_outputs(session.run(out))


@tf1
def test_name_scope_does_not_move_state():
  with tf.compat.v1.name_scope("outer"):
    module = Module(SHARED.path(HALF))
    out = module(tf.constant([1.0]))
  assert module.scope == "module"
  assert out.name.startswith("outer/module_apply_default/")


@tf1
def test_state_ignores_control_dependencies_but_calls_keep_them():
  trigger = tf.compat.v1.placeholder(tf.float32, name="trigger")
  with tf.control_dependencies([trigger]):
    module = Module(SHARED.path(HALF))
    out = module(tf.constant([1.0]))
  graph = tf.compat.v1.get_default_graph()
  state_ops = [op for op in graph.get_operations()
               if op.name.startswith("module/")]
  assert all(trigger.op not in op.control_inputs for op in state_ops)
  call_ops = [op for op in graph.get_operations()
              if op.name.startswith("module_apply_default/")]
  assert any(trigger.op in op.control_inputs for op in call_ops)
  assert out is not None


@tf1
@pytest.mark.parametrize("name", [HALF, TEXT])
def test_inside_wrap_function(name):
  case = _first_case(name)
  inputs = case.inputs()
  (key, value), = inputs.items()

  def build(x):
    return Module(SHARED.path(name))(x)

  wrapped = tf.compat.v1.wrap_function(
      build, [tf.TensorSpec(None, tf.as_dtype(value.dtype)
                            if value.dtype != object else tf.string)])
  inner = wrapped.graph
  init = wrapped.prune(
      [], [v.initializer for v in inner.get_collection(keys.GLOBAL_VARIABLES)]
      + inner.get_collection(keys.TABLE_INITIALIZERS))
  init()
  init_op = tf.compat.v1.get_default_graph().get_operations()[-1]
  out = wrapped(tf.constant(value))
  with tf.compat.v1.Session() as session:
    session.run(init_op)
    case.assert_outputs({"default": session.run(out)})


@tf1
def test_inside_v1_while_loop_with_gradients():
  module = Module(SHARED.path(HALF))
  steps = tf.compat.v1.placeholder(tf.int32, [])
  x = tf.constant([0.0, 4.0])
  _, y = tf.compat.v1.while_loop(lambda i, v: i < steps,
                                 lambda i, v: (i + 1, module(v)),
                                 [tf.constant(0), x])
  dy_dx = tf.gradients(y, x)[0]
  with tf.compat.v1.Session() as session:
    _init(session)
    np.testing.assert_allclose(session.run(y, {steps: 1}), [2.0, 4.0])
    np.testing.assert_allclose(session.run(y, {steps: 3}), [3.5, 4.0])
    np.testing.assert_allclose(session.run(dy_dx, {steps: 3}),
                               [0.125, 0.125])


@tf1
def test_update_ops_follow_the_state_colocation_and_device():
  with tf.device("/device:CPU:0"):
    module = Module(SHARED.path(IMAGE), trainable=True, tags={"train"})
  module(tf.zeros([1, 8, 8, 3]))
  update_ops = tf.compat.v1.get_collection(keys.UPDATE_OPS)
  assert len(update_ops) == 2
  for op, name in zip(update_ops, ["moving_mean", "moving_variance"]):
    variable = module.variable_map[f"bn1/{name}"]
    assert op.colocation_groups() == [f"loc:@module/bn1/{name}".encode()]
    assert variable.op.device.endswith("CPU:0")
    assert op.device == variable.op.device


@tf1
def test_called_in_another_graph():
  module = Module(SHARED.path(HALF))
  with tf.Graph().as_default():
    with pytest.raises(errors.GraphMismatchError) as info:
      module(tf.constant([1.0]))
  assert isinstance(info.value, RuntimeError)


def test_explicit_graph_in_tf2_process():
  """A tf.Graph context is graph mode even when the process is TF2."""
  case = _first_case(IMAGE, signature="default", tags=[])
  with tf.Graph().as_default():
    module = Module(SHARED.path(IMAGE))
    out = module(case.inputs()["default"])
    with tf.compat.v1.Session() as session:
      _init(session)
      case.assert_outputs({"default": session.run(out)})


def test_eager_inference_module_points_to_load():
  if not tf.executing_eagerly():
    pytest.fail("the TF2 session runs eagerly")
  with pytest.raises(errors.UnsupportedOperationError) as info:
    Module(SHARED.path(HALF))
  message = str(info.value)
  assert "hub_adapter.load(handle)" in message
  assert "disable_v2_behavior" in message
  assert info.value.operation.value == "load"
  assert info.value.handle == SHARED.path(HALF)


def test_eager_trainable_module_is_the_fine_tune_cell():
  from hub_adapter import support
  with pytest.raises(errors.UnsupportedOperationError) as info:
    Module(SHARED.path(HALF), trainable=True)
  cell = support.lookup("tf1_hub", "fine_tune", "tf2")
  assert info.value.reason == cell.reason
  assert info.value.remedy == cell.remedy


# Signatures, inputs and outputs -----------------------------------------------
@tf1
def test_bare_list_and_dict_inputs():
  module = Module(SHARED.path(HALF))
  bare = module([1.0, 3.0])
  as_dict = module({"default": np.array([1.0, 3.0])}, as_dict=True)
  assert set(as_dict) == {"default"}
  with tf.compat.v1.Session() as session:
    _init(session)
    np.testing.assert_allclose(session.run(bare), [2.5, 3.5])
    np.testing.assert_allclose(session.run(as_dict["default"]), [2.5, 3.5])


@tf1
def test_signature_names_and_info():
  module = Module(SHARED.path(IMAGE), tags={"train"})
  assert sorted(module.get_signature_names()) == sorted(
      SHARED.entry(IMAGE)["signatures"])
  info = module.get_input_info_dict("image_feature_vector_with_bn_hparams")
  assert info["batch_norm_momentum"].get_shape().rank == 0
  assert module.get_output_info_dict()["default"].get_shape().as_list() == [
      None, 6]


@tf1
def test_multi_input_signature_needs_a_dict():
  module = Module(SHARED.path(TOKENS))
  with pytest.raises(errors.InputTypeError) as info:
    module(tf.constant([["a"]]), signature="tokens")
  assert isinstance(info.value, TypeError)
  assert "'sequence_len'" in str(info.value)


@tf1
def test_wrong_input_names():
  module = Module(SHARED.path(TOKENS))
  with pytest.raises(TypeError, match="missing 'sequence_len'") as info:
    module({"tokens": [["a"]], "lengths": [1]}, signature="tokens")
  assert isinstance(info.value, errors.InputError)
  assert "extra 'lengths'" in str(info.value)


@tf1
def test_wrong_dtype_and_shape():
  module = Module(SHARED.path(IMAGE))
  with pytest.raises(errors.InputTypeError, match="float32"):
    module(tf.constant(["not an image"]))
  with pytest.raises(errors.InputTypeError, match=r"\[None, 8, 8, 3\]"):
    module(tf.zeros([2, 8, 8]))
  with pytest.raises(errors.InputTypeError, match="int32"):
    module(tf.zeros([2, 8, 8, 3], tf.int32))


@tf1
def test_missing_signature_lists_choices():
  module = Module(SHARED.path(TOKENS))
  with pytest.raises(errors.SignatureError, match="'tokens'") as info:
    module({"tokens": [["a"]], "sequence_len": [1]})
  assert "'default'" in str(info.value)


@tf1
def test_signature_without_default_output_needs_as_dict():
  spec = spec_lib.load_module_spec(SHARED.path(ATTACH))
  saved_model = type(spec.saved_model)()
  saved_model.CopyFrom(spec.saved_model)
  outputs = saved_model.meta_graphs[0].signature_def[
      "image_classification"].outputs
  outputs["logits"].CopyFrom(outputs["default"])
  del outputs["default"]
  edited = spec_lib.NativeModuleSpec(
      saved_model, module_dir=spec.module_dir,
      checkpoint_prefix=spec.checkpoint_prefix)
  module = Module(edited)
  images = tf.zeros([1, 6, 6, 3])
  with pytest.raises(errors.OutputSelectionError) as info:
    module(images, signature="image_classification")
  assert isinstance(info.value, TypeError)
  assert "'logits'" in str(info.value)
  assert set(module(images, signature="image_classification",
                    as_dict=True)) == {"logits", "probabilities"}


@tf1
def test_unknown_tags():
  with pytest.raises(errors.TagSetError) as info:
    Module(SHARED.path(IMAGE), tags={"serve"})
  assert isinstance(info.value, KeyError)
  assert isinstance(info.value, ValueError)
  assert "{'train'}" in str(info.value) and "{}" in str(info.value)


@tf1
def test_attached_message_through_module():
  from hub_adapter.tf1 import hub_protos
  module = Module(SHARED.path(ATTACH))
  info = module.get_attached_message("image_module_info",
                                     hub_protos.ImageModuleInfo)
  assert (info.default_image_size.height, info.default_image_size.width) == (
      6, 6)
  assert module.get_attached_message("nothing", hub_protos.ImageModuleInfo
                                     ) is None


# Specs not read from a checkpoint ---------------------------------------------
@tf1
def test_spec_without_checkpoint_uses_initializers():
  spec = spec_lib.load_module_spec(SHARED.path(IMAGE))
  fresh = spec_lib.NativeModuleSpec(spec.saved_model, module_dir=None)
  assert fresh.checkpoint_prefix is None
  module = Module(fresh)
  with tf.compat.v1.Session() as session:
    _init(session)
    values = session.run(module.variable_map)
  np.testing.assert_array_equal(values["bn1/gamma"], np.ones(4))
  np.testing.assert_array_equal(values["bn1/moving_mean"], np.zeros(4))
  np.testing.assert_array_equal(values["bn1/moving_variance"], np.ones(4))


@tf1
def test_saver_round_trip(tmp_path):
  module = Module(SHARED.path(HALF))
  saver = module.saver
  assert saver is module.saver
  with tf.compat.v1.Session() as session:
    _init(session)
    session.run(module.variable_map["a"].assign(7.0))
    prefix = saver.save(session, str(tmp_path / "ckpt"))
  with tf.compat.v1.Session() as session:
    saver.restore(session, prefix)
    assert session.run(module.variable_map["a"]) == 7.0


@tf1
def test_export_needs_the_module_graph():
  module = Module(SHARED.path(HALF))
  other = tf.Graph()
  with tf.compat.v1.Session(graph=other) as session:
    with pytest.raises(errors.GraphMismatchError):
      module.export("/nonexistent/never/written", session)


# Composite inputs and outputs (a spec made with the creation API) ----------
def _composite_module_fn():
  sparse = tf.compat.v1.sparse_placeholder(tf.int64, name="sparse")
  squared = tf.SparseTensor(sparse.indices, sparse.values * sparse.values,
                            sparse.dense_shape)
  ragged = tf.compat.v1.ragged.placeholder(tf.float32, ragged_rank=1,
                                           value_shape=[], name="ragged")
  from hub_adapter.tf1 import creation
  creation.add_signature("sparse", inputs=sparse, outputs=squared)
  creation.add_signature("ragged", inputs={"x": ragged},
                         outputs={"sums": tf.reduce_sum(ragged, axis=1),
                                  "doubled": ragged * 2.0})


@tf1
def test_sparse_and_ragged_signatures():
  from hub_adapter.tf1 import creation
  spec = creation.create_module_spec(_composite_module_fn)
  assert spec.get_input_info_dict("sparse")["default"].is_sparse
  assert spec.get_input_info_dict("ragged")["x"].is_composite
  module = Module(spec)
  value = tf.compat.v1.SparseTensorValue([[0, 0], [1, 2]], [3, 4], [2, 3])
  squared = module(value, signature="sparse")
  assert isinstance(squared, tf.SparseTensor)
  ragged = tf.ragged.constant([[1.0, 2.0], [], [3.0]])
  outputs = module({"x": ragged}, signature="ragged", as_dict=True)
  assert isinstance(outputs["doubled"], tf.RaggedTensor)
  with tf.compat.v1.Session() as session:
    got_sparse, got = session.run([squared, outputs])
  assert got_sparse.values.tolist() == [9, 16]
  assert got_sparse.indices.tolist() == [[0, 0], [1, 2]]
  np.testing.assert_allclose(got["sums"], [3.0, 0.0, 3.0])
  assert got["doubled"].to_list() == [[2.0, 4.0], [], [6.0]]
  with pytest.raises(errors.InputTypeError, match="SparseTensor"):
    module(tf.constant([1, 2], tf.int64), signature="sparse")


def _control_dependency_module_fn():
  from hub_adapter.tf1 import creation
  weight = tf.compat.v1.get_variable("weight", initializer=3.0)
  x = tf.compat.v1.placeholder(tf.float32, [None])
  with tf.control_dependencies([weight.handle.op]):
    doubled = tf.identity(x * 2.0, name="doubled")
  creation.add_signature(inputs=x, outputs=doubled + weight)


@tf1
def test_control_dependency_on_state_is_rewired():
  from hub_adapter.tf1 import creation
  module = Module(creation.create_module_spec(_control_dependency_module_fn))
  out = module([1.0, 2.0])
  controlled = [op for op in tf.compat.v1.get_default_graph().get_operations()
                if op.name.startswith("module_apply_default/")
                and op.control_inputs]
  assert controlled
  for op in controlled:
    assert [dep.name for dep in op.control_inputs] == ["module/weight"]
  with tf.compat.v1.Session() as session:
    _init(session)
    np.testing.assert_allclose(session.run(out), [5.0, 7.0])
