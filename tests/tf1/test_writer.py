"""Writing TF1 Hub module folders: Module.export and ModuleSpec.export.

All tests run in the TF1 compat session. The module comes from
created_modules.py (two graph variants, a partitioned embedding, a
vocabulary asset); it is exported once per test module and read back with
hub_adapter's own reader.
"""
import os

import numpy as np
import pytest

import created_modules  # pylint: disable=g-import-not-at-top,wrong-import-position

from hub_adapter import errors  # pylint: disable=wrong-import-position

pytestmark = pytest.mark.tf1_compat

VARIABLE_SHAPES = {
    "conv/kernel": [3, 3, 3, 4], "bn/gamma": [4], "bn/beta": [4],
    "bn/moving_mean": [4], "bn/moving_variance": [4],
    "logits/kernel": [4, 5], "logits/bias": [5], "embeddings": [9, 4],
}


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def _libs():
  from hub_adapter.tf1 import creation, module, spec, writer  # pylint: disable=g-import-not-at-top
  return creation, module, spec, writer


def _create_spec(vocab_path):
  creation = _libs()[0]
  return creation.create_module_spec(
      created_modules.make_module_fn(vocab_path, creation),
      tags_and_args=created_modules.TAGS_AND_ARGS)


def _outputs(module):
  x = created_modules.inputs()
  return {"default": module(x["images"]),
          "features": module(dict(images=x["images"], text=x["text"]),
                             signature="features", as_dict=True)}


def _full(value):
  return np.concatenate(value) if isinstance(value, list) else value


def _apply(path_or_spec, tags=None):
  """Applies both signatures of a module in a fresh graph; returns the
  outputs and the variable values."""
  tf = _tf()
  module_lib = _libs()[1]
  with tf.Graph().as_default():
    module = module_lib.Module(path_or_spec, tags=tags)
    outputs = _outputs(module)
    with tf.compat.v1.Session() as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
      values = session.run(module.variable_map)
      return session.run(outputs), {k: _full(v) for k, v in values.items()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """Creates the module, exports it from a session, records what the
  session computed."""
  tf = _tf()
  module_lib = _libs()[1]
  root = tmp_path_factory.mktemp("writer")
  vocab = created_modules.write_vocab(str(root))
  spec = _create_spec(vocab)
  path = str(root / "exports" / "module")
  with tf.Graph().as_default():
    module = module_lib.Module(spec)
    outputs = _outputs(module)
    with tf.compat.v1.Session() as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
      values = session.run(module.variable_map)
      computed = session.run(outputs)
      module.export(path, session)
  return {"path": path, "spec": spec, "vocab": vocab, "outputs": computed,
          "values": {k: _full(v) for k, v in values.items()}}


def _temp_siblings(path):
  parent, base = os.path.split(path)
  if not os.path.isdir(parent):
    return []
  return [n for n in os.listdir(parent) if n.startswith(f".{base}.tmp-")]


def _assert_close(actual, expected):
  tf = _tf()
  flat_a = tf.nest.flatten(actual)
  flat_e = tf.nest.flatten(expected)
  assert len(flat_a) == len(flat_e)
  for a, e in zip(flat_a, flat_e):
    np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-6)


# The folder -------------------------------------------------------------------

def test_folder_holds_the_four_parts_and_nothing_else(exported):
  from hub_adapter.tf1 import hub_protos  # pylint: disable=g-import-not-at-top
  path = exported["path"]
  assert sorted(os.listdir(path)) == ["assets", "saved_model.pb",
                                      "tfhub_module.pb", "variables"]
  assert os.listdir(os.path.join(path, "assets")) == ["vocab.txt"]
  with open(os.path.join(path, "assets", "vocab.txt")) as f:
    assert f.read().split() == created_modules.VOCAB
  assert sorted(os.listdir(os.path.join(path, "variables"))) == [
      "variables.data-00000-of-00001", "variables.index"]
  assert hub_protos.read_module_def(path).format == 3
  assert _temp_siblings(path) == []


def test_checkpoint_holds_session_values_under_module_names(exported):
  tf = _tf()
  prefix = os.path.join(exported["path"], "variables", "variables")
  stored = dict(tf.train.list_variables(prefix))
  # The partitioned embedding is stored once, under its full name and shape.
  assert stored == VARIABLE_SHAPES
  reader = tf.train.load_checkpoint(prefix)
  for name, value in exported["values"].items():
    np.testing.assert_array_equal(reader.get_tensor(name), value)


def test_saved_model_has_one_meta_graph_per_tag_set(exported):
  _, _, spec_lib, _ = _libs()
  saved_model = spec_lib.read_saved_model(exported["path"])
  assert sorted(list(m.meta_info_def.tags) for m in saved_model.meta_graphs) \
      == [[], ["train"]]
  for meta_graph in saved_model.meta_graphs:
    assert not meta_graph.HasField("saver_def")
    assert set(meta_graph.signature_def) == {"default", "features"}
    assert "saved_model_assets" in meta_graph.collection_def
    assert "hub_module_attachments" in meta_graph.collection_def
  assert saved_model == exported["spec"].saved_model


def test_reloaded_module_computes_what_the_session_computed(exported):
  outputs, values = _apply(exported["path"])
  _assert_close(outputs, exported["outputs"])
  _assert_close(values, exported["values"])


# ModuleSpec.export ------------------------------------------------------------

def test_spec_export_reads_a_checkpoint_through_name_transform(
    exported, tmp_path):
  tf = _tf()
  # A "training" checkpoint holding the module's variables under encoder/.
  prefix = str(tmp_path / "train" / "model.ckpt")
  with tf.Graph().as_default():
    variables = {f"encoder/{k}": tf.Variable(v)
                 for k, v in exported["values"].items()}
    other = tf.Variable(1.0, name="global_step_like")
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      tf.compat.v1.train.Saver({**variables, "step": other}).save(
          session, prefix)
  target = str(tmp_path / "from_checkpoint")
  exported["spec"].export(target, checkpoint_path=prefix,
                          name_transform_fn=lambda name: "encoder/" + name)
  outputs, values = _apply(target)
  _assert_close(values, exported["values"])
  _assert_close(outputs, exported["outputs"])
  # A folder of checkpoints means its latest one.
  again = str(tmp_path / "from_folder")
  exported["spec"].export(again, checkpoint_path=str(tmp_path / "train"),
                          name_transform_fn=lambda name: "encoder/" + name)
  _assert_close(_apply(again)[1], exported["values"])


def test_loaded_spec_reexports_with_its_own_assets(exported, tmp_path):
  _, _, spec_lib, _ = _libs()
  loaded = spec_lib.load_module_spec(exported["path"])
  target = str(tmp_path / "copy")
  loaded.export(target, checkpoint_path=loaded.checkpoint_prefix)
  assert os.listdir(os.path.join(target, "assets")) == ["vocab.txt"]
  outputs, values = _apply(target, tags={"train"})
  _assert_close(values, exported["values"])
  _assert_close(outputs["features"]["features"],
                _apply(exported["path"], tags={"train"})[0]["features"][
                    "features"])


def test_checkpoint_without_the_variables_is_refused(exported, tmp_path):
  tf = _tf()
  writer = _libs()[3]
  prefix = str(tmp_path / "other" / "ckpt")
  with tf.Graph().as_default():
    v = tf.Variable([1.0, 2.0], name="conv/kernel")
    with tf.compat.v1.Session() as session:
      session.run(v.initializer)
      tf.compat.v1.train.Saver([v]).save(session, prefix)
  target = str(tmp_path / "never")
  with pytest.raises(errors.InputError) as info:
    writer.export_spec(exported["spec"], target, prefix)
  message = str(info.value)
  assert "'embeddings'" in message and "name_transform_fn" in message
  assert "'conv/kernel': checkpoint [2], module [3, 3, 3, 4]" in message
  assert not os.path.exists(target) and _temp_siblings(target) == []


@pytest.mark.parametrize("checkpoint", ["missing", "empty_folder", None])
def test_missing_checkpoints_are_refused(exported, tmp_path, checkpoint):
  writer = _libs()[3]
  (tmp_path / "empty_folder").mkdir()
  where = None if checkpoint is None else str(tmp_path / checkpoint)
  expected = errors.InputError if checkpoint is None else errors.HandleError
  with pytest.raises(expected):
    writer.export_spec(exported["spec"], str(tmp_path / "never"), where)
  assert not os.path.exists(tmp_path / "never")


# Atomic writing ---------------------------------------------------------------

@pytest.mark.parametrize("entry", ["saved_model.pb", "tfhub_module.pb",
                                   "variables", "assets"])
def test_a_target_holding_module_entries_is_never_touched(exported, tmp_path,
                                                          entry):
  target = tmp_path / "taken"
  target.mkdir()
  (target / "keep.txt").write_text("mine")
  if entry in ("variables", "assets"):
    (target / entry).mkdir()
  else:
    (target / entry).write_bytes(b"old")
  with pytest.raises(errors.HandleError) as info:
    exported["spec"].export(str(target), checkpoint_path=os.path.join(
        exported["path"], "variables", "variables"))
  assert isinstance(info.value, OSError)
  assert f"already holds '{entry}'" in str(info.value)
  assert sorted(os.listdir(target)) == sorted(["keep.txt", entry])
  assert _temp_siblings(str(target)) == []


def test_a_folder_with_other_files_gets_the_module_added(exported, tmp_path):
  # As tensorflow_hub 0.15 does: the module's entries join the files there.
  target = tmp_path / "shared"
  target.mkdir()
  (target / "keep.txt").write_text("mine")
  (target / "module.tgz").write_bytes(b"not touched")
  exported["spec"].export(str(target), checkpoint_path=os.path.join(
      exported["path"], "variables", "variables"))
  assert sorted(os.listdir(target)) == [
      "assets", "keep.txt", "module.tgz", "saved_model.pb",
      "tfhub_module.pb", "variables"]
  assert (target / "keep.txt").read_text() == "mine"
  assert _temp_siblings(str(target)) == []
  outputs, values = _apply(str(target))
  _assert_close(outputs, exported["outputs"])
  _assert_close(values, exported["values"])


@pytest.mark.parametrize("scheme", ["file", "ram"])
def test_export_to_tensorflow_file_systems(tmp_path, scheme):
  # As in tensorflow_hub 0.15: the vocabulary and the export folder may be
  # paths of any TensorFlow file system (here file:// and ram://).
  import uuid  # pylint: disable=g-import-not-at-top
  tf = _tf()
  creation, module_lib = _libs()[0], _libs()[1]
  root = (f"file://{tmp_path}" if scheme == "file"
          else f"ram://hub_adapter_{uuid.uuid4().hex}")
  tf.io.gfile.makedirs(root + "/vocab")
  vocab = root + "/vocab/tokens.txt"
  with tf.io.gfile.GFile(vocab, "w") as f:
    f.write("zero\none\ntwo\n")
  target = root + "/export"
  tf.io.gfile.makedirs(target)  # Exists and is empty, as in 0.15's test.

  def module_fn():
    indices = tf.compat.v1.placeholder(tf.int64, [None], name="indices")
    table = tf.compat.v1.lookup.StaticHashTable(
        tf.compat.v1.lookup.TextFileInitializer(
            vocab, tf.int64, tf.compat.v1.lookup.TextFileIndex.LINE_NUMBER,
            tf.string, tf.compat.v1.lookup.TextFileIndex.WHOLE_LINE),
        default_value="UNKNOWN")
    creation.add_signature(inputs=indices, outputs=table.lookup(indices))

  spec = creation.create_module_spec(module_fn)
  with tf.Graph().as_default():
    module = module_lib.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.tables_initializer())
      module.export(target, session)
  names = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(target))
  assert names == ["assets", "saved_model.pb", "tfhub_module.pb",
                   "variables"]
  assert [n.rstrip("/") for n in tf.io.gfile.listdir(target + "/assets")] == [
      "tokens.txt"]
  # Read back: copied to a local folder, the module looks its words up.
  local = tmp_path / "copy"

  def copy(source, dest):
    if not tf.io.gfile.isdir(source):
      tf.io.gfile.copy(source, dest)
      return
    os.makedirs(dest)
    for name in tf.io.gfile.listdir(source):
      copy(source + "/" + name.rstrip("/"), os.path.join(dest,
                                                         name.rstrip("/")))

  copy(target, str(local))
  with tf.Graph().as_default():
    words = module_lib.Module(str(local))(np.array([2, 0, 7], np.int64))
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.tables_initializer())
      assert session.run(words).tolist() == [b"two", b"zero", b"UNKNOWN"]


def test_an_empty_target_folder_is_filled(exported, tmp_path):
  target = tmp_path / "empty"
  target.mkdir()
  exported["spec"].export(str(target), checkpoint_path=os.path.join(
      exported["path"], "variables", "variables"))
  assert "saved_model.pb" in os.listdir(target)


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path):
  tf = _tf()
  module_lib = _libs()[1]
  vocab = created_modules.write_vocab(str(tmp_path))
  spec = _create_spec(vocab)
  target = str(tmp_path / "out" / "module")
  with tf.Graph().as_default():
    module = module_lib.Module(spec)
    with tf.compat.v1.Session() as session:
      session.run(tf.compat.v1.global_variables_initializer())
      os.remove(vocab)  # The asset disappears before the export copies it.
      with pytest.raises(errors.ModelFormatError) as info:
        module.export(target, session)
  assert "vocab.txt" in str(info.value)
  assert not os.path.exists(target)
  assert _temp_siblings(target) == []


# Module.export ----------------------------------------------------------------

def test_export_from_a_finalized_graph_after_training(exported, tmp_path):
  tf = _tf()
  module_lib = _libs()[1]
  x = created_modules.inputs()
  target = str(tmp_path / "trained")
  with tf.Graph().as_default() as graph:
    module = module_lib.Module(exported["spec"], trainable=True,
                               tags={"train"})
    logits = module(x["images"])
    loss = tf.reduce_mean(tf.square(logits)) + tf.add_n(
        tf.compat.v1.get_collection("regularization_losses"))
    with tf.control_dependencies(tf.compat.v1.get_collection("update_ops")):
      train_op = tf.compat.v1.train.GradientDescentOptimizer(0.5).minimize(
          loss)
    init = [tf.compat.v1.global_variables_initializer(),
            tf.compat.v1.tables_initializer()]
    graph.finalize()  # As MonitoredSession does.
    with tf.compat.v1.Session() as session:
      session.run(init)
      before = session.run(module.variable_map)
      for _ in range(3):
        session.run(train_op)
      after = {k: _full(v) for k, v in session.run(module.variable_map).items()}
      module.export(target, session)
  assert not np.allclose(_full(before["conv/kernel"]), after["conv/kernel"])
  assert not np.allclose(before["bn/moving_mean"], after["bn/moving_mean"])
  _assert_close(_apply(target)[1], after)


def test_export_with_a_session_of_another_graph_is_refused(exported,
                                                           tmp_path):
  tf = _tf()
  module_lib, writer = _libs()[1], _libs()[3]
  with tf.Graph().as_default():
    module = module_lib.Module(exported["spec"])
  with tf.Graph().as_default():
    with tf.compat.v1.Session() as other:
      with pytest.raises(errors.InputError) as info:
        writer.export_module(module, str(tmp_path / "never"), other)
  assert "another graph" in str(info.value)
  assert not os.path.exists(tmp_path / "never")


def test_export_before_initialization_is_refused(exported, tmp_path):
  tf = _tf()
  module_lib = _libs()[1]
  with tf.Graph().as_default():
    module = module_lib.Module(exported["spec"])
    with tf.compat.v1.Session() as session:
      with pytest.raises(errors.InputError) as info:
        module.export(str(tmp_path / "never"), session)
  assert "global_variables_initializer" in str(info.value)
  assert not os.path.exists(tmp_path / "never")


def test_module_without_variables_exports_an_empty_checkpoint_folder(
    tmp_path):
  tf = _tf()
  creation, module_lib = _libs()[:2]

  def module_fn():
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    creation.add_signature(inputs=x, outputs=0.5 * x + 2.0)

  target = str(tmp_path / "half_plus_two")
  with tf.Graph().as_default():
    module = module_lib.Module(creation.create_module_spec(module_fn))
    with tf.compat.v1.Session() as session:
      module.export(target, session)
  assert os.listdir(os.path.join(target, "variables")) == []
  assert os.listdir(os.path.join(target, "assets")) == []
  with tf.Graph().as_default():
    y = module_lib.Module(target)(np.array([2.0, 4.0], np.float32))
    with tf.compat.v1.Session() as session:
      np.testing.assert_allclose(session.run(y), [3.0, 4.0])


# Modules written by tensorflow_hub --------------------------------------------

@pytest.mark.parametrize("name", ["tf1_text_embedding",
                                  "tf1_image_with_attachments"])
def test_reexported_hub_module_reproduces_its_goldens(shared_fixtures, name,
                                                      tmp_path):
  """A module exported by tensorflow_hub 0.15 (partitioned embedding, asset,
  attachments), read back and exported again by the writer."""
  tf = _tf()
  _, module_lib, spec_lib, _ = _libs()
  spec = spec_lib.load_module_spec(shared_fixtures.path(name))
  target = str(tmp_path / name)
  spec.export(target, checkpoint_path=spec.checkpoint_prefix)
  reread = spec_lib.load_module_spec(target)
  assert reread.saved_model == spec.saved_model
  for key in ("image_module_info", "label_info"):
    assert reread._get_attached_bytes(key, None) == spec._get_attached_bytes(  # pylint: disable=protected-access
        key, None)
  cases = shared_fixtures.cases(name, "hub.Module")
  assert cases
  for case in cases:
    with tf.Graph().as_default():
      module = module_lib.Module(target, tags=set(case.spec["tags"]))
      outputs = module(case.inputs(), signature=case.spec["signature"],
                       as_dict=True)
      with tf.compat.v1.Session() as session:
        session.run([tf.compat.v1.global_variables_initializer(),
                     tf.compat.v1.tables_initializer()])
        case.assert_outputs(session.run(outputs))
