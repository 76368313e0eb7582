"""Golden cases of the TF2 SavedModel test models: plans, recording, checks.

A *case plan* says what to run on a freshly loaded model (its inputs are
made here, from fixed seeds). :func:`record_fixture` runs every plan of a
fixture, each on a fresh load, and returns the golden arrays and the
manifest records; :func:`verify_fixture` loads a model again, re-runs each
recorded case from the stored inputs and raises if an output, a state or a
description differs. Both run in processes of their own (see
``tf2_saved_model.py``), so nothing of the building process leaks in.

How outputs are stored (``output_structure`` of a ``call`` or ``function``
case; absent = a single tensor, stored as ``output``; ``signature`` cases
always return a dict, stored by key):

- ``dict``: one golden per key. A list value (the encoder's
  ``encoder_outputs``) is stacked into one array along a new first axis; the
  case lists such keys in ``stacked_lists``.
- ``ragged``: the components of the RaggedTensor: ``flat_values`` and
  ``row_splits_0``, ``row_splits_1``, ... (its ``nested_row_splits``).

How inputs are given (``input_structure``; absent = one tensor, stored as
``inputs`` and passed positionally):

- ``dict``: the inputs are the keys of one dict, passed positionally.
- ``ragged_segments``: a list of RaggedTensors, stored as
  ``segment_<i>.flat_values`` and ``segment_<i>.row_splits_<j>``, passed
  positionally, plus the ``arguments`` of the case (e.g. ``seq_length``)
  passed by keyword.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import types
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from common import Goldens
import tf2_bert

HUB_LOAD = "hub.load"
SAVED_MODEL_LOAD = "tf.saved_model.load"

VARIABLE_LISTS = ("non_trainable_variables", "regularization_losses",
                  "trainable_variables", "variables")
"""Root attributes that list variables or losses (the manifest's
``attributes``)."""


def _tf():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf


def import_tensorflow_hub() -> types.ModuleType:
  """Imports tensorflow_hub, standing in for ``pkg_resources`` if needed.

  tensorflow_hub 0.16.1 imports ``pkg_resources.parse_version``, which
  setuptools >= 81 no longer ships; a stand-in module is put in place for
  the import only.

  Returns:
    The tensorflow_hub module.

  Raises:
    ImportError: tensorflow_hub is not installed.
  """
  if "tensorflow_hub" in sys.modules:
    return sys.modules["tensorflow_hub"]
  try:
    import pkg_resources  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    from packaging import version  # pylint: disable=g-import-not-at-top
    stand_in = types.ModuleType("pkg_resources")
    stand_in.parse_version = version.parse
    sys.modules["pkg_resources"] = stand_in
    try:
      import tensorflow_hub  # pylint: disable=g-import-not-at-top
    finally:
      if sys.modules.get("pkg_resources") is stand_in:
        del sys.modules["pkg_resources"]
    return tensorflow_hub
  import tensorflow_hub  # pylint: disable=g-import-not-at-top
  return tensorflow_hub


def import_tensorflow_text(required: bool = True) -> Optional[types.ModuleType]:
  """Imports tensorflow_text, which registers the ops its models use.

  tensorflow_text 2.15 imports tensorflow_hub at import time, so the hub
  import (with its ``pkg_resources`` stand-in) is done first.

  Args:
    required: whether a missing tensorflow_text is an error.

  Returns:
    The module, or None if it is not installed and not required.

  Raises:
    ImportError: it is required and cannot be imported.
  """
  try:
    import_tensorflow_hub()
  except ImportError:
    pass
  try:
    import tensorflow_text  # pylint: disable=g-import-not-at-top
  except ImportError:
    if required:
      raise
    return None
  return tensorflow_text


def load(path: str, loader: str):
  """Loads a SavedModel.

  Args:
    path: the model folder.
    loader: ``hub.load`` (tensorflow_hub) or ``tf.saved_model.load``.

  Returns:
    The loaded object.
  """
  if loader == HUB_LOAD:
    return import_tensorflow_hub().load(path)
  return _tf().saved_model.load(path)


# -- case plans ---------------------------------------------------------------

@dataclasses.dataclass
class CasePlan:
  """One golden case to record.

  Attributes:
    id: the case id.
    api: ``call``, ``signature``, ``regularization_losses`` or ``function``.
    inputs: name -> array, stored as given (see the module docstring).
    input_structure: ``tensor``, ``dict`` or ``ragged_segments``.
    training: for ``call``: the ``training`` value, None to leave it out.
    signature: for ``signature``: its name.
    function: for ``function``: the attribute of the loaded object.
    arguments: keyword arguments of a ``function`` case.
    check: ``allclose`` or ``shape`` (random outputs).
    state_variables: variables whose values after the call are goldens.
    note: a remark for the manifest.
  """
  id: str
  api: str
  inputs: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  input_structure: str = "tensor"
  training: Optional[bool] = None
  signature: Optional[str] = None
  function: Optional[str] = None
  arguments: Dict[str, Any] = dataclasses.field(default_factory=dict)
  check: str = "allclose"
  state_variables: Sequence[str] = ()
  note: Optional[str] = None


def _uniform(seed: int, shape) -> np.ndarray:
  """Seeded float32 inputs in [-1, 1)."""
  return np.random.RandomState(seed).uniform(-1.0, 1.0, shape).astype(
      np.float32)


def _call_text(loader: str, plan: CasePlan) -> str:
  """The manifest's ``call``: how the golden was computed.

  Args:
    loader: ``hub.load`` or ``tf.saved_model.load``.
    plan: the case.

  Returns:
    A Python expression such as ``hub.load(path)(inputs, training=False)``.
  """
  if plan.api == "call":
    args = "inputs" if plan.training is None else (
        f"inputs, training={plan.training}")
    return f"{loader}(path)({args})"
  if plan.api == "signature":
    return f"{loader}(path).signatures[signature](**inputs)"
  if plan.api == "regularization_losses":
    return f"[f() for f in {loader}(path).regularization_losses]"
  arguments = "".join(f", {k}={v!r}" for k, v in plan.arguments.items())
  what = "segments" if plan.input_structure == "ragged_segments" else "inputs"
  return f"{loader}(path).{plan.function}({what}{arguments})"


def image_plans() -> List[CasePlan]:
  """Cases of ``tf2_image_bn_reusable`` (one batch of images for all)."""
  images = _uniform(11, (3, 8, 8, 3))
  return [
      CasePlan("call_training_false", "call", {"inputs": images},
               training=False),
      CasePlan("call_training_true", "call", {"inputs": images},
               training=True,
               state_variables=("bn1/moving_mean:0",
                                "bn1/moving_variance:0"),
               note=("fresh load; stateless (seeded) dropout, so the output "
                     "is deterministic; state_after = moving statistics "
                     "after this one call")),
      CasePlan("signature_serving_default", "signature", {"images": images},
               signature="serving_default"),
      CasePlan("regularization_losses", "regularization_losses"),
  ]


def signatures_only_plans() -> List[CasePlan]:
  """Cases of ``tf2_signatures_only``."""
  inputs = {"context": _uniform(21, (3, 2)), "features": _uniform(22, (3, 4))}
  return [CasePlan(f"signature_{name}", "signature", dict(inputs),
                   signature=name)
          for name in ("serving_default", "serve", "embed")]


TEXT_SENTENCES = np.array(["The cat sat on the mat.",
                           "A big, red dog runs fast!", "",
                           "unknown words everywhere", "HUB model is text"])


def text_plans() -> List[CasePlan]:
  """Cases of ``tf2_text_vocab_asset`` (an empty and an unknown sentence)."""
  return [
      CasePlan("call_0", "call", {"inputs": TEXT_SENTENCES}),
      CasePlan("call_1", "call", {"inputs": np.array(["small blue cat"])}),
      CasePlan("signature_serving_default", "signature",
               {"sentences": TEXT_SENTENCES}, signature="serving_default"),
  ]


def keras_plans() -> List[CasePlan]:
  """Cases of ``tf2_keras_savedmodel`` (one batch for all)."""
  x = _uniform(41, (4, 6))
  return [
      CasePlan("call_training_false", "call", {"inputs": x}, training=False),
      CasePlan("call_training_true", "call", {"inputs": x}, training=True,
               check="shape",
               state_variables=("bn/moving_mean:0", "bn/moving_variance:0"),
               note=("fresh load; Keras Dropout is random so the output is "
                     "checked for shape only; state_after (batch norm "
                     "moving statistics, computed before dropout) is "
                     "deterministic")),
      CasePlan("signature_serving_default", "signature", {"x": x},
               signature="serving_default"),
      CasePlan("regularization_losses", "regularization_losses"),
  ]


BERT_SENTENCES = np.array(["The cat sat on the mat.", "Dogs are PLAYING!",
                           "", "Hub models tokenize text, unlikely?",
                           "Über café"])
BERT_SECOND_SEGMENTS = np.array(["a good model", "the dog ran", "and a cat",
                                 "text is good text is good", "?"])


def ragged_components(prefix: str, ragged) -> Dict[str, np.ndarray]:
  """``{prefix}flat_values`` and ``{prefix}row_splits_<i>`` of a ragged."""
  parts = {f"{prefix}flat_values": ragged.flat_values.numpy()}
  for i, splits in enumerate(ragged.nested_row_splits):
    parts[f"{prefix}row_splits_{i}"] = splits.numpy()
  return parts


def ragged_from_components(components: Mapping[str, np.ndarray],
                           prefix: str = ""):
  """Rebuilds the RaggedTensor stored by :func:`ragged_components`."""
  tf = _tf()
  splits = []
  while f"{prefix}row_splits_{len(splits)}" in components:
    splits.append(components[f"{prefix}row_splits_{len(splits)}"])
  return tf.RaggedTensor.from_nested_row_splits(
      components[f"{prefix}flat_values"], splits)


def bert_preprocess_plans(path: str) -> List[CasePlan]:
  """Cases of ``tf2_bert_preprocess``.

  Args:
    path: the model folder; its ``tokenize`` makes the segments fed to the
      ``bert_pack_inputs`` cases (stored as inputs, so checks do not depend
      on it).

  Returns:
    The plans.
  """
  tf = _tf()
  model = tf.saved_model.load(path)
  first = model.tokenize(tf.constant(BERT_SENTENCES))
  second = model.tokenize(tf.constant(BERT_SECOND_SEGMENTS))
  one = ragged_components("segment_0.", first)
  two = dict(one, **ragged_components("segment_1.", second))
  return [
      CasePlan("call_0", "call", {"inputs": BERT_SENTENCES}),
      CasePlan("signature_serving_default", "signature",
               {"sentences": BERT_SENTENCES}, signature="serving_default"),
      CasePlan("tokenize_0", "function", {"inputs": BERT_SENTENCES},
               function="tokenize"),
      CasePlan("bert_pack_inputs_one_segment", "function", one,
               input_structure="ragged_segments", function="bert_pack_inputs",
               arguments={"seq_length": tf2_bert.SEQ_LENGTH}),
      CasePlan("bert_pack_inputs_two_segments", "function", two,
               input_structure="ragged_segments", function="bert_pack_inputs",
               arguments={"seq_length": 12},
               note="seq_length 12 trims the longer pairs round-robin"),
  ]


def bert_encoder_plans(preprocess_path: str) -> List[CasePlan]:
  """Cases of ``tf2_bert_encoder``, fed with the preprocessor's outputs.

  Args:
    preprocess_path: the ``tf2_bert_preprocess`` folder.

  Returns:
    The plans.
  """
  tf = _tf()
  preprocess = tf.saved_model.load(preprocess_path)
  packed = {k: v.numpy() for k, v in
            preprocess(tf.constant(BERT_SENTENCES)).items()}
  note = "inputs: tf2_bert_preprocess applied to its call_0 sentences"
  return [
      CasePlan("call_training_false", "call", dict(packed),
               input_structure="dict", training=False, note=note),
      CasePlan("call_training_true", "call", dict(packed),
               input_structure="dict", training=True, check="shape",
               note=note + "; random dropout, so shape and dtype only"),
      CasePlan("signature_serving_default", "signature", dict(packed),
               signature="serving_default", note=note),
      CasePlan("regularization_losses", "regularization_losses"),
  ]


# -- running a case -----------------------------------------------------------

def _structured_inputs(structure: str, inputs: Mapping[str, np.ndarray]):
  """The positional argument of a call/function case."""
  tf = _tf()
  if structure == "tensor":
    return tf.constant(inputs["inputs"])
  if structure == "dict":
    return {k: tf.constant(v) for k, v in inputs.items()}
  if structure == "ragged_segments":
    count = len({k.split(".")[0] for k in inputs})
    return [ragged_from_components(inputs, f"segment_{i}.")
            for i in range(count)]
  raise ValueError(f"unknown input_structure {structure!r}")


def flatten_outputs(value) -> tuple:
  """Splits a returned value into golden arrays.

  Args:
    value: a tensor, a RaggedTensor, or a dict of tensors and lists of
      tensors.

  Returns:
    ``(output_structure, stacked_lists, arrays)``; see the module docstring.
  """
  tf = _tf()
  if isinstance(value, tf.RaggedTensor):
    return "ragged", [], ragged_components("", value)
  if isinstance(value, Mapping):
    arrays, stacked = {}, []
    for key, item in value.items():
      if isinstance(item, (list, tuple)):
        stacked.append(key)
        arrays[key] = np.stack([np.asarray(t) for t in item])
      else:
        arrays[key] = np.asarray(item)
    return "dict", sorted(stacked), arrays
  return "tensor", [], {"output": np.asarray(value)}


def run_case(model, plan_or_spec: Mapping[str, Any],
             inputs: Mapping[str, np.ndarray]) -> Dict[str, Any]:
  """Runs one case on a loaded model.

  Args:
    model: the freshly loaded model.
    plan_or_spec: the case as a dict (a manifest case or a plan's fields).
    inputs: the input arrays by name.

  Returns:
    ``{"structure", "stacked", "outputs", "state", "values"}``.
  """
  tf = _tf()
  api = plan_or_spec["api"]
  result = {"structure": "tensor", "stacked": [], "outputs": {},
            "state": {}, "values": None}
  if api == "regularization_losses":
    result["values"] = [float(f()) for f in model.regularization_losses]
    return result
  if api == "signature":
    value = model.signatures[plan_or_spec["signature"]](
        **{k: tf.constant(v) for k, v in inputs.items()})
  else:
    argument = _structured_inputs(
        plan_or_spec.get("input_structure", "tensor"), inputs)
    if api == "call":
      training = plan_or_spec.get("training")
      value = (model(argument) if training is None
               else model(argument, training=training))
    else:
      value = getattr(model, plan_or_spec["function"])(
          argument, **plan_or_spec.get("arguments", {}))
  structure, stacked, arrays = flatten_outputs(value)
  result.update(structure=structure, stacked=stacked, outputs=arrays)
  wanted = plan_or_spec.get("state_variables") or list(
      plan_or_spec.get("state_after", {}))
  if wanted:
    values = {v.name: v.numpy() for v in model.variables}
    result["state"] = {name: values[name] for name in wanted}
  return result


# -- describing a loaded model ------------------------------------------------

def _spec_json(spec) -> Any:
  """A TensorSpec (or a structure of them) as the manifest writes it."""
  tf = _tf()
  if isinstance(spec, Mapping):
    return {k: _spec_json(spec[k]) for k in sorted(spec)}
  if isinstance(spec, (list, tuple)):
    return [_spec_json(s) for s in spec]
  record = {"dtype": spec.dtype.name,
            "shape": None if spec.shape.rank is None else spec.shape.as_list()}
  if isinstance(spec, tf.RaggedTensorSpec):
    record["ragged_rank"] = spec.ragged_rank
  return record


def _read_saved_model(path: str):
  """The parsed ``saved_model.pb`` of a model folder."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
  return proto


def _call_description(model) -> Dict[str, Any]:
  """``has_training_arg``, input specs and traced training values.

  Args:
    model: the loaded model, which has ``__call__``.

  Returns:
    The manifest's ``call`` record: ``inputs`` lists the specs of the
    positional tensor arguments of the traces (a dict input is one dict).

  Raises:
    ValueError: the traces take different inputs.
  """
  inputs, training_values, has_training = None, set(), False
  for function in model.__call__.concrete_functions:
    args, kwargs = function.structured_input_signature
    tensors = [a for a in args
               if not isinstance(a, (bool, type(None)))]
    flags = [a for a in args if isinstance(a, bool)]
    if "training" in kwargs:
      flags.append(kwargs["training"])
    if flags or "training" in kwargs:
      has_training = True
    training_values.update(f for f in flags if isinstance(f, bool))
    described = _spec_json(tensors)
    if inputs is None:
      inputs = described
    elif inputs != described:
      raise ValueError(f"__call__ traces take different inputs: {inputs} "
                       f"and {described}")
  return {"has_training_arg": has_training, "inputs": inputs or [],
          "training_values": sorted(training_values)}


def _call_accepts_training(path: str) -> bool:
  """Whether the saved ``__call__``'s argument list names ``training``."""
  graph = _read_saved_model(path).meta_graphs[0].object_graph_def
  for child in graph.nodes[0].children:
    if child.local_name == "__call__":
      spec = graph.nodes[child.node_id].function.function_spec
      fields = {p.key: p.value
                for p in spec.fullargspec.named_tuple_value.values}
      names = [v.string_value for key in ("args", "kwonlyargs")
               if key in fields for v in fields[key].list_value.values]
      return "training" in names
  return False


def describe(path: str, model) -> Dict[str, Any]:
  """The manifest fields read from a saved and reloaded model.

  Args:
    path: the model folder.
    model: the model as ``tf.saved_model.load`` or ``hub.load`` gave it.

  Returns:
    ``tag_sets``, ``signatures``, ``attributes``, ``function_attributes``,
    ``has_call``, ``call`` (if it has one), ``auto_signature``,
    ``variables``, ``num_regularization_losses`` (if it has the
    attribute), ``assets`` (if any) and ``has_tfhub_module_pb``.
  """
  proto = _read_saved_model(path)
  graph = proto.meta_graphs[0].object_graph_def
  root_children = {c.local_name: graph.nodes[c.node_id]
                   for c in graph.nodes[0].children}
  signatures = {}
  for name, function in model.signatures.items():
    signatures[name] = {
        "inputs": _spec_json(function.structured_input_signature[1]),
        "outputs": _spec_json({
            k: t if isinstance(t, _tf().TypeSpec)
            else _tf().TensorSpec.from_tensor(t)
            for k, t in function.structured_outputs.items()})}
  has_call = "__call__" in root_children
  description = {
      "tag_sets": sorted(sorted(m.meta_info_def.tags)
                         for m in proto.meta_graphs),
      "signatures": signatures,
      "attributes": sorted(n for n in root_children if n in VARIABLE_LISTS),
      "function_attributes": sorted(
          n for n, node in root_children.items()
          if node.WhichOneof("kind") == "function"
          and not n.startswith("_")),
      "has_call": has_call,
      "has_tfhub_module_pb": os.path.exists(
          os.path.join(path, "tfhub_module.pb")),
      "auto_signature": ("__call__" if has_call else
                         "serving_default" if "serving_default" in signatures
                         else sorted(signatures)[0]),
      "variables": [{"dtype": v.dtype.name, "name": v.name,
                     "shape": v.shape.as_list(), "trainable": v.trainable}
                    for v in getattr(model, "variables", [])],
  }
  if has_call:
    call = _call_description(model)
    if call["has_training_arg"] != _call_accepts_training(path):
      raise ValueError(f"{path}: __call__ traces and argument list disagree "
                       "on `training`")
    description["call"] = call
  if "regularization_losses" in root_children:
    description["num_regularization_losses"] = len(
        model.regularization_losses)
  assets_dir = os.path.join(path, "assets")
  assets = sorted(os.listdir(assets_dir)) if os.path.isdir(assets_dir) else []
  if assets:
    description["assets"] = assets
  return description


# -- recording ----------------------------------------------------------------

def record_fixture(path: str, loader: str, plans: Sequence[CasePlan],
                   goldens: Goldens) -> tuple:
  """Runs every plan on a fresh load and records the goldens.

  Args:
    path: the model folder.
    loader: ``hub.load`` or ``tf.saved_model.load``.
    plans: the cases.
    goldens: receives the golden arrays.

  Returns:
    ``(description, cases)``: :func:`describe` of the model and the
    manifest's case records.
  """
  description = describe(path, load(path, loader))
  cases = []
  for plan in plans:
    spec = dataclasses.asdict(plan)
    result = run_case(load(path, loader), spec, plan.inputs)
    case: Dict[str, Any] = {"id": plan.id, "api": plan.api,
                            "tf_mode": "tf2_eager"}
    if plan.api == "call":
      case["training"] = plan.training
    if plan.signature is not None:
      case["signature"] = plan.signature
    if plan.function is not None:
      case["function"] = plan.function
    if plan.arguments:
      case["arguments"] = dict(plan.arguments)
    case["call"] = _call_text(loader, plan)
    if plan.note:
      case["note"] = plan.note
    if plan.api == "regularization_losses":
      case["values"] = result["values"]
    else:
      if plan.input_structure != "tensor":
        case["input_structure"] = plan.input_structure
      case["inputs"] = goldens.record(f"{plan.id}/in", plan.inputs)
      if result["structure"] != "tensor" and plan.api != "signature":
        case["output_structure"] = result["structure"]
      if result["stacked"]:
        case["stacked_lists"] = result["stacked"]
      case["outputs"] = goldens.record(f"{plan.id}/out", result["outputs"])
      if result["state"]:
        state = goldens.record(
            f"{plan.id}/state",
            {name.split(":")[0]: value
             for name, value in result["state"].items()})
        case["state_after"] = {f"{short}:0": spec
                               for short, spec in state.items()}
    case["check"] = plan.check
    cases.append(case)
  return description, cases


# -- verifying ----------------------------------------------------------------

def _compare(what: str, got: np.ndarray, want: np.ndarray, check: str,
             tolerance: Mapping[str, float]) -> None:
  """Raises AssertionError unless ``got`` reproduces ``want``."""
  got = np.asarray(got)
  if got.dtype == object or got.dtype.kind == "S":
    got = np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes)
                       else str(b), otypes=[str])(got)
  if got.shape != want.shape:
    raise AssertionError(f"{what}: shape {got.shape}, golden {want.shape}")
  if (got.dtype.kind in "USO") != (want.dtype.kind in "USO") or (
      want.dtype.kind not in "USO" and got.dtype != want.dtype):
    raise AssertionError(f"{what}: dtype {got.dtype}, golden {want.dtype}")
  if check == "shape":
    return
  if want.dtype.kind in "USO" or want.dtype.kind in "iub":
    if not np.array_equal(got, want):
      raise AssertionError(f"{what}: {got!r} differs from golden {want!r}")
  else:
    np.testing.assert_allclose(got, want, err_msg=what, **tolerance)


def _golden_inputs(golden, records: Mapping[str, Any]) -> Dict[str, Any]:
  """Input arrays of a case; strings become UTF-8 bytes as TF wants."""
  arrays = {}
  for name, record in records.items():
    array = golden[record["key"]]
    if array.dtype.kind == "U":
      array = np.char.encode(array, "utf-8").astype(object)
    arrays[name] = array
  return arrays


def verify_fixture(path: str, entry: Mapping[str, Any], golden,
                   loader: str = SAVED_MODEL_LOAD) -> int:
  """Re-runs every case of a fixture on fresh loads; raises on a mismatch.

  Args:
    path: the model folder (or an extracted archive of it).
    entry: its manifest entry.
    golden: its ``np.load``-ed goldens.
    loader: how to load it.

  Returns:
    The number of cases checked.

  Raises:
    AssertionError: a description, output, state or loss differs.
  """
  name = entry["name"]
  description = describe(path, load(path, loader))
  for key, value in description.items():
    if entry.get(key) != value:
      raise AssertionError(f"{name} at {path}: {key} is {value!r}, the "
                           f"manifest says {entry.get(key)!r}")
  tolerance = entry["tolerance"]
  for case in entry["cases"]:
    what = f"{name} case {case['id']} ({path})"
    inputs = _golden_inputs(golden, case.get("inputs", {}))
    result = run_case(load(path, loader), case, inputs)
    if case["api"] == "regularization_losses":
      _compare(what, np.array(result["values"]), np.array(case["values"]),
               case["check"], tolerance)
      continue
    structure = case.get("output_structure",
                         "dict" if case["api"] == "signature" else "tensor")
    if result["structure"] != structure:
      raise AssertionError(f"{what}: returned a {result['structure']}")
    if sorted(result["outputs"]) != sorted(case["outputs"]):
      raise AssertionError(f"{what}: outputs {sorted(result['outputs'])}, "
                           f"golden {sorted(case['outputs'])}")
    for key, record in case["outputs"].items():
      _compare(f"{what} output {key}", result["outputs"][key],
               golden[record["key"]], case["check"], tolerance)
    for variable, record in case.get("state_after", {}).items():
      _compare(f"{what} state {variable}", result["state"][variable],
               golden[record["key"]], "allclose", tolerance)
  return len(entry["cases"])


PLANS: Dict[str, Callable[[str], List[CasePlan]]] = {
    "tf2_image_bn_reusable": lambda part: image_plans(),
    "tf2_signatures_only": lambda part: signatures_only_plans(),
    "tf2_text_vocab_asset": lambda part: text_plans(),
    "tf2_keras_savedmodel": lambda part: keras_plans(),
    "tf2_bert_preprocess": lambda part: bert_preprocess_plans(
        os.path.join(part, "tf2_bert_preprocess")),
    "tf2_bert_encoder": lambda part: bert_encoder_plans(
        os.path.join(part, "tf2_bert_preprocess")),
}
"""Fixture name -> ``plans(part_dir)``."""

LOADERS: Dict[str, str] = {
    "tf2_image_bn_reusable": HUB_LOAD,
    "tf2_signatures_only": HUB_LOAD,
    "tf2_text_vocab_asset": HUB_LOAD,
    "tf2_keras_savedmodel": HUB_LOAD,
    "tf2_bert_preprocess": SAVED_MODEL_LOAD,
    "tf2_bert_encoder": SAVED_MODEL_LOAD,
}
"""How each fixture's goldens are recorded (as in the old manifest: hub.load
for the four classic models)."""
