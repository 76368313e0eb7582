"""Tests of hub_adapter.convert: TF1 Hub modules as TF2 SavedModels.

Every TF1 fixture is converted once per session (into tmp_path_factory) and
checked against the goldens ``hub.load`` recorded for it; the image module is
fine-tuned in TF2 and compared with the fine-tuning step recorded in TF1.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import fixtures
import hub_adapter
from hub_adapter import conversion as convert_lib
from hub_adapter import errors
from hub_adapter import runtime

TF1_FIXTURES = ("tf1_text_embedding", "tf1_image_feature_vector",
                "tf1_tokens_signature_only", "tf1_image_with_attachments",
                "half_plus_two_v1", "tf1_refvar_lstm")
SHARED = fixtures.locate()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
  """Fixture name -> folder of its conversion (made on first use)."""
  root = tmp_path_factory.mktemp("converted")
  made = {}

  def get(name):
    if name not in made:
      made[name] = convert_lib.convert(SHARED.path(name),
                                       str(root / name))
    return made[name]
  return get


def _numpy(outputs):
  return {k: v.numpy() for k, v in outputs.items()}


@pytest.mark.parametrize("name", TF1_FIXTURES)
def test_signatures_reproduce_hub_load_goldens(converted, name):
  model = hub_adapter.load(converted(name))
  assert model.format is hub_adapter.Format.TF2_SAVED_MODEL
  checked = 0
  for case in SHARED.cases(name, "hub.load.signatures"):
    signature = case.spec["signature"]
    if case.spec["tags"]:
      function = model.raw.train_signatures[signature]
    else:
      function = model.signatures[signature]
      assert sorted(function.structured_input_signature[1]) == sorted(
          case.spec["inputs"])
    case.assert_outputs(_numpy(function(**case.inputs())))
    checked += 1
  assert checked == len(SHARED.cases(name, "hub.load.signatures"))
  entry = SHARED.entry(name)
  infer_tags = frozenset(entry["tag_sets"][0]) if len(
      entry["tag_sets"]) == 1 else frozenset()
  assert infer_tags == frozenset()
  assert sorted(model.signatures) == sorted(entry["signatures"])


@pytest.mark.parametrize("name", TF1_FIXTURES)
def test_call_applies_the_default_signature(converted, name):
  model = hub_adapter.load(converted(name))
  auto = SHARED.entry(name)["auto_signature"]
  case = [c for c in SHARED.cases(name, "hub.load.signatures")
          if c.spec["signature"] == auto and not c.spec["tags"]][0]
  inputs = case.inputs()
  call_inputs = next(iter(inputs.values())) if len(inputs) == 1 else inputs
  got = model(call_inputs)
  np.testing.assert_allclose(got.numpy(), case.outputs()["default"],
                             rtol=1e-5, atol=1e-5)


def test_variables_keep_their_tf1_trainability(converted):
  model = hub_adapter.load(converted("tf1_image_feature_vector"),
                           trainable=True)
  finetune = SHARED.entry("tf1_image_feature_vector")["finetune"]
  names = sorted(v.name[:-2] for v in model.trainable_variables)
  assert names == sorted(finetune["trainable_variables"])
  everything = sorted(v.name[:-2] for v in model.variables)
  assert everything == sorted(
      v["name"] for v in SHARED.entry("tf1_image_feature_vector")["variables"])
  frozen = hub_adapter.load(converted("tf1_image_feature_vector"))
  assert frozen.trainable_variables == []


def test_partitioned_variable_stays_partitioned(converted):
  model = hub_adapter.load(converted("tf1_text_embedding"))
  names = sorted(v.name for v in model.variables)
  view = SHARED.entry("tf1_text_embedding")["tf2_hub_load_view"][0]
  assert names == sorted(view["variables"])


def test_finetune_step_matches_the_tf1_record(converted):
  """One SGD step in TF2 equals the step hub.Module(trainable=True) took."""
  name = "tf1_image_feature_vector"
  entry = SHARED.entry(name)
  record = entry["finetune"]
  golden = SHARED.golden(name)
  tol = record["tolerance"]
  model = hub_adapter.load(converted(name), trainable=True)
  by_name = {v.name[:-2]: v for v in model.variables}
  for key, spec in record["variables_before"].items():
    np.testing.assert_allclose(by_name[key].numpy(), golden[spec["key"]],
                               **tol)
  losses = model.regularization_losses
  assert len(losses) == record["num_regularization_losses"]
  images = golden[record["input"]["key"]]

  def loss_fn():
    return (tf.reduce_mean(tf.square(model(images, training=True)))
            + tf.add_n([f() for f in losses]))

  with tf.GradientTape() as tape:
    loss = loss_fn()
  np.testing.assert_allclose(loss.numpy(), record["loss_before"], **tol)
  grads = tape.gradient(loss, model.trainable_variables)
  for var, grad in zip(model.trainable_variables, grads):
    if grad is not None:
      var.assign_sub(0.1 * grad)
  for key, spec in record["variables_after"].items():
    np.testing.assert_allclose(by_name[key].numpy(), golden[spec["key"]],
                               err_msg=key, **tol)
  np.testing.assert_allclose(loss_fn().numpy(), record["loss_after"], **tol)


def test_moving_statistics_change_only_with_training(converted):
  model = hub_adapter.load(converted("tf1_image_feature_vector"),
                           trainable=True)
  stats = [v for v in model.variables if "moving" in v.name]
  assert len(stats) == 2 and not any(v.trainable for v in stats)
  images = np.random.RandomState(0).rand(4, 8, 8, 3).astype(np.float32)
  before = [v.numpy().copy() for v in stats]
  model(images, training=False)
  for var, old in zip(stats, before):
    np.testing.assert_array_equal(var.numpy(), old)
  model(images, training=True)
  assert all(not np.allclose(v.numpy(), old)
             for v, old in zip(stats, before))


def test_gradient_tape_reduces_the_loss(converted):
  model = hub_adapter.load(converted("tf1_image_feature_vector"),
                           trainable=True)
  images = np.random.RandomState(1).rand(8, 8, 8, 3).astype(np.float32)
  target = np.ones((8, 6), np.float32)
  optimizer = tf.optimizers.SGD(0.05)

  def loss_fn():
    out = model(images, training=True)
    return tf.reduce_mean(tf.square(out - target)) + tf.add_n(
        [f() for f in model.regularization_losses])

  first = None
  for _ in range(5):
    with tf.GradientTape() as tape:
      loss = loss_fn()
    first = loss.numpy() if first is None else first
    variables = model.trainable_variables
    grads = tape.gradient(loss, variables)
    optimizer.apply_gradients(
        [(g, v) for g, v in zip(grads, variables) if g is not None])
  assert loss_fn().numpy() < first


def test_keras_layer_fine_tunes_in_fit(converted):
  keras = runtime.keras_module()
  keras.utils.set_random_seed(3)
  layer = hub_adapter.KerasLayer(converted("tf1_image_feature_vector"),
                                 trainable=True)
  inputs = keras.Input(shape=(8, 8, 3))
  model = keras.Model(inputs, keras.layers.Dense(1)(layer(inputs)))
  model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
  rng = np.random.RandomState(2)
  x = rng.rand(16, 8, 8, 3).astype(np.float32)
  y = rng.rand(16, 1).astype(np.float32)
  assert len(layer.trainable_weights) == 7
  # Keras 3 names weights by their last part only; the shape is unique.
  kernel = [w for w in layer.trainable_weights
            if tuple(w.shape) == (4, 6)][0]
  before = kernel.numpy().copy()
  history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
  assert history.history["loss"][-1] < history.history["loss"][0]
  assert not np.allclose(kernel.numpy(), before)


def test_vocabulary_survives_moving_the_folders(tmp_path):
  source = tmp_path / "module"
  shutil.copytree(SHARED.path("tf1_text_embedding"), source)
  first = tmp_path / "first"
  convert_lib.convert(str(source), str(first))
  shutil.rmtree(source)
  moved = tmp_path / "elsewhere" / "moved"
  moved.parent.mkdir()
  shutil.move(str(first), str(moved))
  assert os.listdir(moved / "assets") == ["tokens.txt"]
  model = hub_adapter.load(str(moved))
  for case in SHARED.cases("tf1_text_embedding", "hub.load.signatures"):
    case.assert_outputs(_numpy(model.signatures["default"](**case.inputs())))
    got = model(case.inputs()["sentences"])
    np.testing.assert_allclose(got.numpy(), case.outputs()["default"],
                               rtol=1e-5, atol=1e-5)


def test_tf_saved_model_load_sees_reusable_attributes(converted):
  obj = tf.saved_model.load(converted("tf1_image_feature_vector"))
  assert len(obj.variables) == 9
  assert len(obj.trainable_variables) == 7
  assert len(obj.regularization_losses) == 2
  values = sorted(float(f()) for f in obj.regularization_losses)
  assert all(v > 0 for v in values)
  assert sorted(obj.train_signatures) == sorted(obj.signatures)


def test_train_tags_none_uses_the_inference_graph(tmp_path):
  out = convert_lib.convert(SHARED.path("tf1_image_feature_vector"),
                            str(tmp_path / "out"), train_tags=None)
  model = hub_adapter.load(out, trainable=True)
  case = [c for c in SHARED.cases("tf1_image_feature_vector",
                                  "hub.load.signatures")
          if c.id == "tf2_hubload_infer_default"][0]
  stats = [v.numpy().copy() for v in model.variables if "moving" in v.name]
  got = model(case.inputs()["default"], training=True)
  np.testing.assert_allclose(got.numpy(), case.outputs()["default"],
                             rtol=1e-5, atol=1e-5)
  after = [v.numpy() for v in model.variables if "moving" in v.name]
  for old, new in zip(stats, after):
    np.testing.assert_array_equal(old, new)


def test_refuses_a_non_empty_export_dir_unless_overwrite(tmp_path):
  target = tmp_path / "taken"
  target.mkdir()
  (target / "keep.txt").write_text("data")
  with pytest.raises(errors.HandleError) as raised:
    convert_lib.convert(SHARED.path("half_plus_two_v1"), str(target))
  assert str(target) in str(raised.value)
  assert "overwrite=True" in str(raised.value)
  assert (target / "keep.txt").exists()
  convert_lib.convert(SHARED.path("half_plus_two_v1"), str(target),
                      overwrite=True)
  assert not (target / "keep.txt").exists()
  assert (target / "saved_model.pb").exists()
  leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".")]
  assert leftovers == []
  empty = tmp_path / "empty"
  empty.mkdir()
  assert convert_lib.convert(SHARED.path("half_plus_two_v1"),
                             str(empty)) == str(empty)


def test_refuses_bad_requests(tmp_path):
  with pytest.raises(errors.ModelFormatError) as raised:
    convert_lib.convert(SHARED.path("tf2_image_bn_reusable"),
                        str(tmp_path / "a"))
  assert "already a TF2 SavedModel" in str(raised.value)
  with pytest.raises(errors.TagSetError):
    convert_lib.convert(SHARED.path("half_plus_two_v1"),
                        str(tmp_path / "b"), tags={"serve"})
  with pytest.raises(errors.HandleError) as raised:
    convert_lib.convert(SHARED.path("half_plus_two_v1"),
                        os.path.join(SHARED.path("half_plus_two_v1"), "x"))
  assert "overlaps" in str(raised.value)
  assert not os.path.exists(tmp_path / "a")


@pytest.mark.tf1_compat
def test_converts_from_tf1_compat_mode(tmp_path):
  """In graph mode the conversion runs in a child process."""
  out = convert_lib.convert(SHARED.path("tf1_image_feature_vector"),
                            str(tmp_path / "out"))
  model = hub_adapter.load(out)
  case = [c for c in SHARED.cases("tf1_image_feature_vector",
                                  "hub.load.signatures")
          if c.id == "tf2_hubload_infer_default"][0]
  output = model(tf.constant(case.inputs()["default"]))
  with tf.compat.v1.Session() as session:
    session.run([tf.compat.v1.global_variables_initializer(),
                 tf.compat.v1.tables_initializer()])
    got = session.run(output)
  np.testing.assert_allclose(got, case.outputs()["default"], rtol=1e-5,
                             atol=1e-5)
  with pytest.raises(errors.HandleError):
    convert_lib.convert(SHARED.path("tf1_image_feature_vector"), out)


# -- TF 1.x-era modules: reference variables and v1 control flow ---------------

REFVAR = "tf1_refvar_lstm"


def _op_types(folder):
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(folder, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
  found = set()
  for meta_graph in proto.meta_graphs:
    found.update(n.op for n in meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
      found.update(n.op for n in function.node_def)
  return found


def test_reference_variables_become_resource_variables(converted):
  source = _op_types(SHARED.path(REFVAR))
  assert "VariableV2" in source and "VarHandleOp" not in source
  assert set(SHARED.entry(REFVAR)["control_flow_ops"]) <= source
  out = _op_types(converted(REFVAR))
  assert not out & {"VariableV2", "Variable", "RefEnter", "RefSwitch",
                    "RefMerge", "RefIdentity", "Assign"}
  # The v1 loop and cond still run, inside the functions (see the goldens).
  assert {"Enter", "Exit", "LoopCond", "Switch", "Merge"} <= out
  model = hub_adapter.load(converted(REFVAR), trainable=True)
  assert sorted(v.name[:-2] for v in model.trainable_variables) == sorted(
      SHARED.entry(REFVAR)["finetune"]["trainable_variables"])
  assert len(model.regularization_losses) == 1


def test_every_variant_keeps_every_signature(converted):
  obj = tf.saved_model.load(converted(REFVAR))
  assert sorted(obj.signatures) == sorted(obj.train_signatures) == [
      "default", "tokens"]
  assert sorted(obj.signature_functions) == ["default", "tokens"]


def _refvar_step(model, sentences, loss_of_outputs):
  """Loss and one SGD(0.1) step with a GradientTape, as TF1 recorded."""
  with tf.GradientTape() as tape:
    loss = loss_of_outputs(model(sentences, training=True)) + tf.add_n(
        [f() for f in model.regularization_losses])
  grads = tape.gradient(loss, model.trainable_variables)
  assert all(g is not None for g in grads)
  for var, grad in zip(model.trainable_variables, grads):
    var.assign_sub(0.1 * tf.convert_to_tensor(grad))
  return loss


def test_refvar_finetune_step_matches_the_tf1_record(converted):
  record = SHARED.entry(REFVAR)["finetune"]
  golden = SHARED.golden(REFVAR)
  tol = record["tolerance"]
  model = hub_adapter.load(converted(REFVAR), trainable=True)
  by_name = {v.name[:-2]: v for v in model.variables}
  for key, spec in record["variables_before"].items():
    np.testing.assert_allclose(by_name[key].numpy(), golden[spec["key"]],
                               err_msg=key, **tol)
  sentences = tf.constant(golden[record["input"]["key"]].astype(object))
  loss = _refvar_step(model, sentences,
                      lambda y: tf.reduce_mean(tf.square(y)))
  np.testing.assert_allclose(loss.numpy(), record["loss_before"], **tol)
  for key, spec in record["variables_after"].items():
    np.testing.assert_allclose(by_name[key].numpy(), golden[spec["key"]],
                               err_msg=key, **tol)
  after = tf.reduce_mean(tf.square(model(sentences, training=True))) + (
      tf.add_n([f() for f in model.regularization_losses]))
  np.testing.assert_allclose(after.numpy(), record["loss_after"], **tol)


def test_refvar_keras_layer_fit_matches_the_tf1_record(converted):
  keras = runtime.keras_module()
  record = SHARED.entry(REFVAR)["finetune"]
  golden = SHARED.golden(REFVAR)
  tol = record["tolerance"]
  layer = hub_adapter.KerasLayer(converted(REFVAR), trainable=True)
  inputs = keras.Input(shape=(), dtype="string")
  model = keras.Model(inputs, layer(inputs))

  def mean_square(y_true, y_pred):
    del y_true
    return tf.reduce_mean(tf.square(y_pred))

  model.compile(optimizer=keras.optimizers.SGD(0.1), loss=mean_square)
  sentences = golden[record["input"]["key"]].astype(object)
  history = model.fit(sentences, np.zeros((len(sentences), 5), np.float32),
                      batch_size=len(sentences), epochs=1, shuffle=False,
                      verbose=0)
  np.testing.assert_allclose(history.history["loss"][0],
                             record["loss_before"], **tol)
  by_name = {v.name[:-2]: v for v in layer.model.variables}
  for key, spec in record["variables_after"].items():
    np.testing.assert_allclose(by_name[key].numpy(), golden[spec["key"]],
                               err_msg=key, **tol)


def test_refvar_outputs_equal_the_module_in_both_variants(converted):
  model = hub_adapter.load(converted(REFVAR))
  for case in SHARED.cases(REFVAR, "hub.load.signatures"):
    if case.spec["signature"] != "default":
      continue
    got = model(case.inputs()["sentences"],
                training=bool(case.spec["tags"]))
    np.testing.assert_allclose(got.numpy(), case.outputs()["default"],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.tf1_compat
def test_refvar_converts_from_tf1_compat_mode(tmp_path):
  out = convert_lib.convert(SHARED.path(REFVAR), str(tmp_path / "out"))
  model = hub_adapter.load(out)
  case = [c for c in SHARED.cases(REFVAR, "hub.load.signatures")
          if c.id == "tf2_hubload_infer_default_0"][0]
  output = model(tf.constant(case.inputs()["sentences"]))
  with tf.compat.v1.Session() as session:
    session.run([tf.compat.v1.global_variables_initializer(),
                 tf.compat.v1.tables_initializer()])
    got = session.run(output)
  np.testing.assert_allclose(got, case.outputs()["default"], rtol=1e-5,
                             atol=1e-5)


def test_a_reference_op_without_resource_equivalent_is_refused(tmp_path):
  """RefSelect picks among references: no resource version exists."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  module = tmp_path / "module"
  shutil.copytree(SHARED.path(REFVAR), module)
  path = module / "saved_model.pb"
  proto = saved_model_pb2.SavedModel.FromString(path.read_bytes())
  for meta_graph in proto.meta_graphs:
    index = meta_graph.graph_def.node.add()
    index.name, index.op = "pick", "Const"
    index.attr["dtype"].type = tf.int32.as_datatype_enum
    index.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(0))
    node = meta_graph.graph_def.node.add()
    node.name, node.op = "select_a_reference", "RefSelect"
    node.input.extend(["pick", "word_emb", "word_emb"])
    node.attr["T"].type = tf.float32.as_datatype_enum
    node.attr["N"].i = 2
  path.write_bytes(proto.SerializeToString())
  with pytest.raises(errors.ModelFormatError) as raised:
    convert_lib.convert(str(module), str(tmp_path / "out"))
  message = str(raised.value)
  assert "RefSelect node 'select_a_reference'" in message
  assert "no resource-variable equivalent" in message
  assert "enable_resource_variables()" in message  # the remedy
  assert "hub_adapter.load(handle, trainable=True)" in message
  assert not (tmp_path / "out").exists()


# -- attached messages ------------------------------------------------------------

def test_attached_messages_are_readable_after_conversion(converted):
  from hub_adapter.tf1 import image_util  # pylint: disable=g-import-not-at-top
  name = "tf1_image_with_attachments"
  out = converted(name)
  source_info = hub_adapter.inspect(SHARED.path(name))
  info = hub_adapter.inspect(out)
  assert info.attached_messages == source_info.attached_messages
  assert len(info.attached_messages) == 2
  assert os.path.isfile(os.path.join(out, "assets",
                                     convert_lib.ATTACHMENTS_ASSET))
  spec = hub_adapter.load_module_spec(SHARED.path(name))
  for key in info.attached_messages:
    message_type = (image_util.ImageModuleInfo if key == "image_module_info"
                    else tf.train.Example)
    want = spec.get_attached_message(key, message_type)
    got = convert_lib.get_attached_message(out, key, message_type)
    assert got == want and got.ByteSize() > 0
  assert convert_lib.get_attached_message(out, "nothing", tf.train.Example) is (
      None)
  with pytest.raises(errors.AttachmentNotFoundError):
    convert_lib.get_attached_message(out, "nothing", tf.train.Example,
                                     required=True)
  assert "Attached messages: " in __import__(
      "hub_adapter.inspection").inspection.describe(info)


# -- sparse and ragged inputs ------------------------------------------------------

COMPOSITE = "tf1_sparse_ragged_inputs"


def test_converted_model_takes_sparse_and_ragged_tensors(converted):
  out = converted(COMPOSITE)
  model = hub_adapter.load(out)
  ragged_model = hub_adapter.load(out, signature="ragged")
  view = SHARED.entry(COMPOSITE)["tf2_hub_load_view"][0]["signatures"]
  for name, function in model.signatures.items():
    # The flat TF2 signatures take the components, named as hub.load's.
    assert sorted(function.structured_input_signature[1]) == sorted(
        view[name]["inputs"])
  for case in SHARED.cases(COMPOSITE, "hub.load.signatures"):
    x = case.inputs()
    want = case.outputs()["default"]
    if case.spec["signature"] == "default":
      value = tf.SparseTensor(x["ids_indices"], x["ids_values"],
                              x["ids_dense_shape"])
      got = model(value)
    else:
      value = tf.RaggedTensor.from_row_splits(x["ids_component_0"],
                                              x["ids_component_1"])
      got = ragged_model(value)
      np.testing.assert_allclose(
          model.raw.signature_functions["ragged"](ids=value)["default"],
          want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    flat = model.signatures[case.spec["signature"]](
        **{k: tf.constant(v) for k, v in x.items()})
    np.testing.assert_allclose(flat["default"].numpy(), want, rtol=1e-5,
                               atol=1e-5)
  layer = hub_adapter.KerasLayer(out)
  case = SHARED.cases(COMPOSITE, "hub.load.signatures")[0]
  x = case.inputs()
  np.testing.assert_allclose(
      layer(tf.SparseTensor(x["ids_indices"], x["ids_values"],
                            x["ids_dense_shape"])),
      case.outputs()["default"], rtol=1e-5, atol=1e-5)
  with pytest.raises(errors.InputError) as raised:
    model(tf.constant([[1, 2]], tf.int64))
  assert "SparseTensorSpec" in str(raised.value)


@pytest.mark.tf1_compat
def test_converted_refvar_module_fine_tunes_in_tf1_compat_mode(tmp_path):
  """The gradients built ahead of time serve tf.compat.v1 optimizers too."""
  out = convert_lib.convert(SHARED.path(REFVAR), str(tmp_path / "out"))
  record = SHARED.entry(REFVAR)["finetune"]
  golden = SHARED.golden(REFVAR)
  model = hub_adapter.load(out, trainable=True)
  sentences = tf.constant(golden[record["input"]["key"]].astype(object))
  loss = tf.reduce_mean(tf.square(model(sentences, training=True))) + (
      tf.compat.v1.losses.get_regularization_loss())
  step = tf.compat.v1.train.GradientDescentOptimizer(0.1).minimize(loss)
  with tf.compat.v1.Session() as session:
    session.run([tf.compat.v1.global_variables_initializer(),
                 tf.compat.v1.tables_initializer()])
    np.testing.assert_allclose(session.run(loss), record["loss_before"],
                               **record["tolerance"])
    session.run(step)
    np.testing.assert_allclose(session.run(loss), record["loss_after"],
                               **record["tolerance"])


_LOOP_READS_MODULE = r"""
import json, sys
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_v2_behavior()
import hub_adapter

def module_fn():
  x = tf.compat.v1.placeholder(tf.float32, [None, 3], name="x")
  w = tf.compat.v1.get_variable(
      "w", initializer=tf.constant([[0.5], [-1.0], [2.0]]), use_resource=True)
  emb = tf.compat.v1.get_variable(
      "emb", initializer=tf.reshape(tf.range(12, dtype=tf.float32) / 10, [4, 3]),
      use_resource=True)

  def body(i, acc):  # Both variables are read inside the v1 while loop.
    row = tf.gather(emb, tf.math.floormod(i, 4))            # ResourceGather
    step = tf.matmul(x[i:i + 1] * row, w)                   # ReadVariableOp
    return i + 1, acc + tf.reshape(step, [1, 1])

  _, total = tf.compat.v1.while_loop(
      lambda i, acc: i < tf.shape(x)[0], body,
      [tf.constant(0), tf.zeros([1, 1])])
  hub_adapter.add_signature(inputs=x, outputs=total)

path = sys.argv[1]
spec = hub_adapter.create_module_spec(module_fn)
with tf.Graph().as_default():
  module = hub_adapter.Module(spec)
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    module.export(path, session)
x = np.array([[1., 2., 3.], [4., 5., 6.]], np.float32)
with tf.Graph().as_default():
  module = hub_adapter.Module(path, trainable=True)
  loss = tf.reduce_sum(tf.square(module(x)))
  step = tf.compat.v1.train.GradientDescentOptimizer(0.01).minimize(loss)
  with tf.compat.v1.Session() as session:
    session.run(tf.compat.v1.global_variables_initializer())
    before = float(session.run(loss))
    session.run(step)
    after = {v.op.name.split("/", 1)[1]: session.run(v).tolist()
             for v in module.variables}
print(json.dumps({"loss": before, "variables": after}))
"""


def test_variables_read_inside_a_v1_loop_fine_tune_after_conversion(
    tmp_path):
  """Resource variables read inside a v1 while loop (ReadVariableOp and
  ResourceGather through Enter) get their gradients too; the TF1 compat
  step of hub_adapter.Module (tested against tensorflow_hub 0.15 elsewhere)
  is the reference."""
  import json  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  module = str(tmp_path / "module")
  done = subprocess.run(
      [sys.executable, "-c", _LOOP_READS_MODULE, module], capture_output=True,
      text=True, timeout=300, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert done.returncode == 0, done.stderr[-3000:]
  record = json.loads(done.stdout.strip().splitlines()[-1])
  out = convert_lib.convert(module, str(tmp_path / "out"))
  model = hub_adapter.load(out, trainable=True)
  x = np.array([[1., 2., 3.], [4., 5., 6.]], np.float32)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.square(model(x, training=True)))
  np.testing.assert_allclose(loss.numpy(), record["loss"], rtol=1e-5)
  grads = tape.gradient(loss, model.trainable_variables)
  for var, grad in zip(model.trainable_variables, grads):
    var.assign_sub(0.01 * tf.convert_to_tensor(grad))
    np.testing.assert_allclose(var.numpy(), record["variables"][var.name[:-2]],
                               rtol=1e-5, atol=1e-6, err_msg=var.name)
