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
                "half_plus_two_v1")
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
  golden = np.load(os.path.join(SHARED.root, entry["golden"]))
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
