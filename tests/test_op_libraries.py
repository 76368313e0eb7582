"""Tests of hub_adapter.op_libraries: add-on op libraries found and imported.

The BERT preprocessor test model (``tf2_bert_preprocess``) uses
tensorflow_text ops (``CaseFoldUTF8``, ``WordpieceTokenizeWithOffsets``,
...). Each end-to-end test runs in a fresh Python process that never imports
tensorflow_text itself, so the library is registered only if hub_adapter
imports it. "Not installed" is a real absence: tensorflow_decision_forests
is not installed on any test stack, and a child process that hides
tensorflow_text (``sys.modules["tensorflow_text"] = None``, Python's own way
of marking a module as unimportable) stands in for a stack without it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import hub_adapter
from hub_adapter import errors
from hub_adapter import inspection
from hub_adapter import op_libraries
from hub_adapter import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "make_op_library_table.py")
PREPROCESS = "tf2_bert_preprocess"


def _fresh(code: str, *args: str, timeout: int = 300) -> dict:
  """Runs ``code`` in a fresh interpreter; returns its last stdout line as
  JSON (the code prints one)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  done = subprocess.run([sys.executable, "-c", code, *args],
                        capture_output=True, text=True, env=env,
                        timeout=timeout, check=False)
  assert done.returncode == 0, done.stderr[-4000:]
  lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
  assert lines, (done.stdout[-2000:], done.stderr[-2000:])
  result = json.loads(lines[-1])
  result["stderr"] = done.stderr
  return result


def _tf_minor() -> str:
  major, minor = runtime.tf_version()
  return f"{major}.{minor}"


# -- the table ----------------------------------------------------------------

def test_table_maps_ops_and_prefixes_to_libraries():
  assert op_libraries.library_for_op("CaseFoldUTF8") == "tensorflow_text"
  assert op_libraries.library_for_op(
      "WordpieceTokenizeWithOffsets") == "tensorflow_text"
  assert op_libraries.library_for_op("TFText>NewOpNotYetListed") == (
      "tensorflow_text")
  assert op_libraries.library_for_op("IO>AudioReadableInit") == (
      "tensorflow_io")
  assert op_libraries.library_for_op("Addons>Resampler") == (
      "tensorflow_addons")
  assert op_libraries.library_for_op(
      "SimpleMLInferenceOpWithHandle") == "tensorflow_decision_forests"
  assert op_libraries.library_for_op("MatMul") is None
  assert sorted(op_libraries.LIBRARIES) == [
      "tensorflow_addons", "tensorflow_decision_forests", "tensorflow_io",
      "tensorflow_text"]
  text = op_libraries.LIBRARIES["tensorflow_text"]
  assert text["pip"] == "tensorflow-text" and text["follows_tensorflow"]
  # How each entry was made is recorded with it.
  assert any(m.startswith("registry diff: TensorFlow 2.15.1 + "
                          "tensorflow-text 2.15.0") for m in text["made_by"])
  assert any(m.startswith("registry diff: TensorFlow 2.21.0 + "
                          "tensorflow-text 2.21.1") for m in text["made_by"])
  for name in ("tensorflow_io", "tensorflow_addons",
               "tensorflow_decision_forests"):
    assert op_libraries.LIBRARIES[name]["made_by"][0].startswith(
        "source scan: REGISTER_OP")


def test_requirement_follows_the_running_tensorflow():
  assert op_libraries.requirement("tensorflow_text", "2.21.0") == (
      "tensorflow-text==2.21.*")
  assert op_libraries.requirement("tensorflow_text", "2.15.1") == (
      "tensorflow-text==2.15.*")
  assert op_libraries.requirement("tensorflow_text") == (
      f"tensorflow-text=={_tf_minor()}.*")
  assert op_libraries.requirement("tensorflow_io") == "tensorflow-io"
  assert op_libraries.requirement("no_such_library") is None


def test_table_holds_every_op_the_installed_tensorflow_text_registers():
  # The script's registry diff, run again on this stack, finds nothing the
  # table lacks.
  done = subprocess.run(
      [sys.executable, TOOL, "--check", "--diff", "tensorflow_text"],
      capture_output=True, text=True, timeout=300, check=False,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  assert done.returncode == 0, (done.stdout, done.stderr[-3000:])
  assert json.loads(done.stdout) == {}


def test_op_types_come_from_graphs_and_functions(shared_fixtures):
  saved_model = inspection.read_saved_model(shared_fixtures.path(PREPROCESS))
  found = op_libraries.op_types(saved_model)
  expected = set(shared_fixtures.entry(PREPROCESS)["non_core_ops"])
  assert expected <= found
  assert "StatefulPartitionedCall" in found
  # Function names are calls, not op types.
  functions = {f.signature.name for mg in saved_model.meta_graphs
               for f in mg.graph_def.library.function}
  assert not found & functions


# -- a model that needs tensorflow_text, in a fresh process ------------------

_LOAD_CODE = r"""
import json, sys
import numpy as np
from absl import logging
logging.set_verbosity(logging.INFO)
import hub_adapter
path, sentences = sys.argv[1], json.loads(sys.argv[2])
before = "tensorflow_text" in sys.modules
model = hub_adapter.load(path)
outputs = model(sentences)
print(json.dumps({
    "before": before, "after": "tensorflow_text" in sys.modules,
    "outputs": {k: np.asarray(v).tolist() for k, v in outputs.items()}}))
"""


def test_load_imports_tensorflow_text_in_a_fresh_process(shared_fixtures):
  case = shared_fixtures.cases(PREPROCESS, "call")[0]
  sentences = [s.decode() for s in case.inputs()["inputs"].tolist()]
  result = _fresh(_LOAD_CODE, shared_fixtures.path(PREPROCESS),
                  json.dumps(sentences))
  assert result["before"] is False and result["after"] is True
  case.assert_outputs({k: np.array(v) for k, v in result["outputs"].items()})
  assert "importing tensorflow_text" in result["stderr"]
  assert "CaseFoldUTF8" in result["stderr"]


_KERAS_CODE = r"""
import json, sys
import numpy as np
import hub_adapter
path, sentences = sys.argv[1], json.loads(sys.argv[2])
layer = hub_adapter.KerasLayer(path)
outputs = layer(np.array(sentences))
print(json.dumps({
    "after": "tensorflow_text" in sys.modules,
    "outputs": {k: np.asarray(v).tolist() for k, v in outputs.items()}}))
"""


def test_keras_layer_imports_tensorflow_text_in_a_fresh_process(
    shared_fixtures):
  case = shared_fixtures.cases(PREPROCESS, "call")[0]
  sentences = [s.decode() for s in case.inputs()["inputs"].tolist()]
  result = _fresh(_KERAS_CODE, shared_fixtures.path(PREPROCESS),
                  json.dumps(sentences))
  assert result["after"] is True
  case.assert_outputs({k: np.array(v) for k, v in result["outputs"].items()})


_INSPECT_CODE = r"""
import json, sys
import hub_adapter
from hub_adapter import inspection
info = hub_adapter.inspect(sys.argv[1])
print(json.dumps({"json": inspection.to_json(info)["op_libraries"],
                  "text": inspection.describe(info),
                  "loaded": "tensorflow_text" in sys.modules}))
"""


def test_inspect_lists_the_needed_library_without_importing_it(
    shared_fixtures):
  result = _fresh(_INSPECT_CODE, shared_fixtures.path(PREPROCESS))
  assert result["loaded"] is False
  (need,) = result["json"]
  assert need["library"] == "tensorflow_text"
  assert need["pip"] == "tensorflow-text"
  assert need["requirement"] == f"tensorflow-text=={_tf_minor()}.*"
  assert need["importable"] is True and need["loaded"] is False
  assert need["installed_version"].startswith(_tf_minor() + ".")
  assert set(shared_fixtures.entry(PREPROCESS)["non_core_ops"]) <= set(
      need["ops"])
  assert need["missing"] == need["ops"]  # Not registered before the import.
  assert "Op libraries needed:" in result["text"]
  assert "tensorflow_text: installed" in result["text"]


def test_cli_inspect_says_the_model_needs_tensorflow_text(shared_fixtures):
  cli = os.path.join(os.path.dirname(sys.executable), "hub-adapter")
  done = subprocess.run([cli, "inspect", shared_fixtures.path(PREPROCESS)],
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "Op libraries needed:" in done.stdout
  assert "tensorflow_text" in done.stdout and "CaseFoldUTF8" in done.stdout


_HIDDEN_CODE = r"""
import json, sys
sys.modules["tensorflow_text"] = None  # As if it were not installed.
import hub_adapter
from hub_adapter import errors
path, api = sys.argv[1], sys.argv[2]
try:
  if api == "load":
    hub_adapter.load(path)
  elif api == "keras":
    hub_adapter.KerasLayer(path)
  else:
    print(json.dumps({"inspect": [
        n.importable for n in hub_adapter.inspect(path).op_libraries]}))
except errors.BackendUnavailableError as e:
  print(json.dumps({"type": type(e).__name__, "message": str(e),
                    "ops": list(e.ops), "requirement": e.requirement,
                    "is_import_error": isinstance(e, ImportError)}))
"""


@pytest.mark.parametrize("api", ["load", "keras"])
def test_missing_tensorflow_text_names_ops_package_and_version(
    shared_fixtures, api):
  result = _fresh(_HIDDEN_CODE, shared_fixtures.path(PREPROCESS), api)
  assert result["type"] == "BackendUnavailableError"
  assert result["is_import_error"] is True
  assert result["requirement"] == f"tensorflow-text=={_tf_minor()}.*"
  message = result["message"]
  for op in shared_fixtures.entry(PREPROCESS)["non_core_ops"]:
    assert op in message and op in result["ops"]
  assert f'pip install "tensorflow-text=={_tf_minor()}.*"' in message
  assert "tensorflow_text" in message and "not installed" in message
  assert "handle:" in message and "mode: tf2" in message
  assert "format: tf2_saved_model" in message


def test_inspect_reports_a_hidden_library_as_not_importable(shared_fixtures):
  result = _fresh(_HIDDEN_CODE, shared_fixtures.path(PREPROCESS), "inspect")
  assert result["inspect"] == [False]


# -- crafted models: a library that is really absent, and unknown ops --------

def _with_op(source: str, target: str, op_type: str) -> str:
  """Copies a SavedModel and adds a node of ``op_type`` to its graph.

  Only the protos change (the model is never run): the op makes the model
  need a library. fingerprint.pb, whose checksum covers saved_model.pb, is
  left out (it is optional).
  """
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  shutil.copytree(source, target)
  os.remove(os.path.join(target, "fingerprint.pb"))
  path = os.path.join(target, "saved_model.pb")
  proto = saved_model_pb2.SavedModel()
  with open(path, "rb") as f:
    proto.ParseFromString(f.read())
  node = proto.meta_graphs[0].graph_def.node.add()
  node.name = "needs_a_library"
  node.op = op_type
  with open(path, "wb") as f:
    f.write(proto.SerializeToString())
  return target


def test_a_library_that_is_not_installed_is_named(shared_fixtures, tmp_path):
  assert not op_libraries._importable("tensorflow_decision_forests")  # pylint: disable=protected-access
  path = _with_op(shared_fixtures.path("tf2_bert_encoder"),
                  str(tmp_path / "model"), "SimpleMLInferenceOpWithHandle")
  with pytest.raises(errors.BackendUnavailableError) as e:
    op_libraries.ensure_op_libraries(
        inspection.inspect_folder(path, handle=path), path)
  message = str(e.value)
  assert "SimpleMLInferenceOpWithHandle" in message
  assert "tensorflow_decision_forests" in message
  assert "pip install tensorflow-decision-forests" in message
  assert e.value.library == "tensorflow_decision_forests"
  with pytest.raises(errors.BackendUnavailableError):
    hub_adapter.load(path)
  with pytest.raises(errors.BackendUnavailableError):
    hub_adapter.KerasLayer(path)
  info = hub_adapter.inspect(path)
  (need,) = [n for n in info.op_libraries
             if n.library == "tensorflow_decision_forests"]
  assert need.importable is False and need.ops == (
      "SimpleMLInferenceOpWithHandle",)
  assert "NOT installed" in inspection.describe(info)


def test_ops_no_library_provides_are_reported(shared_fixtures, tmp_path):
  path = _with_op(shared_fixtures.path("tf2_bert_encoder"),
                  str(tmp_path / "model"), "HubAdapterNoSuchOp")
  with pytest.raises(errors.BackendUnavailableError) as e:
    hub_adapter.load(path)
  assert "HubAdapterNoSuchOp" in str(e.value)
  assert "no library hub_adapter knows" in str(e.value)
  # A broken or too-new model is also a ModelFormatError, as before.
  assert isinstance(e.value, errors.UnknownOpError)
  assert isinstance(e.value, errors.ModelFormatError)
  (need,) = hub_adapter.inspect(path).op_libraries
  assert need.library is None and need.ops == ("HubAdapterNoSuchOp",)


def test_models_without_library_ops_need_nothing(shared_fixtures):
  info = hub_adapter.inspect(shared_fixtures.path("tf2_bert_encoder"))
  assert info.op_libraries == ()
  assert op_libraries.ensure_op_libraries(info) == ()


# -- TF1 Hub modules: Module and convert --------------------------------------

_MAKE_TF1_TEXT_MODULE = r"""
import sys
import tensorflow as tf
tf.compat.v1.disable_v2_behavior()
import hub_adapter
from hub_adapter import op_libraries
op_libraries._import("tensorflow_text")
import tensorflow_text as text

def module_fn():
  sentences = tf.compat.v1.placeholder(tf.string, [None])
  hub_adapter.add_signature(inputs=sentences,
                            outputs=text.case_fold_utf8(sentences))

spec = hub_adapter.create_module_spec(module_fn)
with tf.Graph().as_default():
  module = hub_adapter.Module(spec)
  with tf.compat.v1.Session() as session:
    module.export(sys.argv[1], session)
print("{}")
"""

_USE_TF1_TEXT_MODULE = r"""
import json, sys
import tensorflow as tf
tf.compat.v1.disable_v2_behavior()
import hub_adapter
path, converted = sys.argv[1], sys.argv[2]
module = hub_adapter.Module(path)
out = module(tf.constant(["HeLLo WORLD"]))
with tf.compat.v1.Session() as session:
  value = session.run(out)
loaded = "tensorflow_text" in sys.modules
hub_adapter.convert(path, converted)  # Runs in a fresh TF2 child process.
print(json.dumps({"value": [v.decode() for v in value], "loaded": loaded}))
"""

_USE_CONVERTED = r"""
import json, sys
import hub_adapter
model = hub_adapter.load(sys.argv[1])
print(json.dumps({"value": [v.decode() for v in model(["HeLLo Again"]).numpy()],
                  "loaded": "tensorflow_text" in sys.modules}))
"""


def test_module_and_convert_import_tensorflow_text(tmp_path):
  module = str(tmp_path / "module")
  _fresh(_MAKE_TF1_TEXT_MODULE, module)
  result = _fresh(_USE_TF1_TEXT_MODULE, module, str(tmp_path / "converted"))
  assert result == {"value": ["hello world"], "loaded": True,
                    "stderr": result["stderr"]}
  result = _fresh(_USE_CONVERTED, str(tmp_path / "converted"))
  assert result["value"] == ["hello again"] and result["loaded"] is True
