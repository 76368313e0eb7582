"""Picking tag sets, signatures and outputs, and checking a signature's inputs.

``load()`` uses the picking functions to validate a request from the
``ModelInfo`` alone, before anything heavy is loaded; the SavedModel backends
use :func:`prepare_inputs` and :func:`select_output` at call time.

The rules, shared by every format and mode:

- Tag set: the one asked for (it must exist), else ``ModelInfo.default_tags``
  (the empty set, else ``{"serve"}``, else the only one).
- Signature of a TF1 Hub module: the one asked for, else ``default``, else
  the only one, else a :class:`~hub_adapter.errors.SignatureError` listing the
  choices.
- Signature of a TF2 SavedModel: the one asked for (``"__call__"`` names the
  root function); else the root ``__call__`` (``None``) when the root object
  has one; else ``serving_default``; else the only one; else an error.
- Output: ``as_dict=True`` returns every output as a dict; ``output_key``
  returns that output; otherwise the ``default`` output, else the only
  output, else the dict (``as_dict=False`` makes that last case an error).
  ``output_key`` and ``as_dict=True`` exclude each other, and ``as_dict``
  needs a signature, as in ``hub.KerasLayer``.

Only :func:`prepare_inputs` imports TensorFlow, when it is called.
"""
from __future__ import annotations

import re
from typing import Any, Dict, FrozenSet, Iterable, Mapping, Optional

from hub_adapter import errors
from hub_adapter.support import Format

CALL = "__call__"
"""The name that stands for a TF2 SavedModel's root ``__call__``."""

DEFAULT = "default"
SERVING_DEFAULT = "serving_default"


# -- small formatting helpers -------------------------------------------------

def format_tags(tags: Optional[Iterable[str]], *, empty: str = "set()",
                quoted: bool = True) -> str:
  """Formats a tag set for messages; the one tag formatter of the package.

  Args:
    tags: A tag set, or None (no tags asked for).
    empty: How the empty set is written: ``set()`` as users pass it, or
      ``{}`` as the TF1 Hub API's messages write a graph variant.
    quoted: Quote each tag (``{'serve'}``, as Python writes a set) or not
      (``{serve}``, as reports about a model's files write it).

  Returns:
    ``{'serve', 'train'}`` (sorted), ``empty`` for the empty set, ``None``.
  """
  if tags is None:
    return "None"
  items = sorted(tags)
  if not items:
    return empty
  return "{" + ", ".join(repr(t) if quoted else t for t in items) + "}"


def node_name(tensor_or_input: str) -> str:
  """Returns the node a tensor name or graph input names.

  Args:
    tensor_or_input: ``"a/b:1"``, a control input ``"^a/b"`` or ``"a/b"``.

  Returns:
    ``"a/b"``.
  """
  name = tensor_or_input[1:] if tensor_or_input.startswith("^") else (
      tensor_or_input)
  match = re.match(r"^(.*):\d+$", name)
  return match.group(1) if match else name


def format_tag_sets(tag_sets: Iterable[FrozenSet[str]]) -> str:
  """Formats every tag set of a model, smallest first, for an error."""
  ordered = sorted(tag_sets, key=lambda t: (len(t), sorted(t)))
  items = [format_tags(t) for t in ordered]
  return ", ".join(items) if items else "(none)"


def format_tensor(info: Any) -> str:
  """Formats a ``TensorInfo`` as ``name: dtype[shape]``."""
  if info.shape is None:
    shape = "<unknown rank>"
  else:
    shape = "[" + ", ".join("None" if d is None else str(d)
                            for d in info.shape) + "]"
  kind = ""
  if getattr(info, "is_composite", False):
    kind = f" ({getattr(info, 'kind', 'composite')}"
    if getattr(info, "ragged_rank", None) is not None:
      kind += f", ragged_rank={info.ragged_rank}"
    kind += ")"
  return f"{info.name}: {info.dtype}{shape}{kind}"


def format_tensors(tensors: Mapping[str, Any]) -> str:
  """Formats a signature's inputs or outputs, sorted by name."""
  if not tensors:
    return "(none)"
  return "; ".join(format_tensor(tensors[k]) for k in sorted(tensors))


def context(info: Any, handle: Optional[str], mode: Any = None,
            **extra: Any) -> Dict[str, Any]:
  """The facts an error about a model quotes.

  Args:
    info: The ``ModelInfo``.
    handle: The handle as given.
    mode: The running mode, if known.
    **extra: More facts (signature, tags, ...); None values are left out.

  Returns:
    An ordered dict for ``errors.compose``.
  """
  facts = {
      "handle": handle,
      "folder": getattr(info, "path", None),
      "format": getattr(getattr(info, "format", None), "value", None),
      "mode": getattr(mode, "value", mode),
  }
  facts.update(extra)
  return facts


def normalize_tags(tags: Any) -> Optional[FrozenSet[str]]:
  """Turns a user's ``tags`` argument into a frozenset (None stays None).

  Accepts a set, frozenset, list or tuple of strings, or one string.

  Raises:
    SignatureError: ``tags`` is something else.
  """
  if tags is None:
    return None
  if isinstance(tags, str):
    return frozenset([tags])
  if isinstance(tags, (set, frozenset, list, tuple)) and all(
      isinstance(t, str) for t in tags):
    return frozenset(tags)
  raise errors.SignatureError(errors.compose(
      f"tags={tags!r} is not a set of strings.",
      "A tag set names one graph variant (meta graph) of a SavedModel.",
      "Pass a set of strings such as set() or {'train'}, or leave tags=None "
      "for the model's default tag set."), tags=tags)


# -- tag sets -----------------------------------------------------------------

def pick_tags(info: Any, tags: Optional[Iterable[str]], *,
              handle: Optional[str] = None, mode: Any = None
              ) -> FrozenSet[str]:
  """Returns the tag set to load.

  Args:
    info: The ``ModelInfo``.
    tags: The tag set asked for, or None for the model's default.
    handle: The handle, quoted in errors.
    mode: The running mode, quoted in errors.

  Returns:
    The tag set, as a frozenset.

  Raises:
    SignatureError: (``errors.TagSetError``) the model has no such tag set.
  """
  if tags is None:
    return info.default_tags
  asked = normalize_tags(tags)
  if asked in info.tag_sets:
    return asked
  raise errors.TagSetError(errors.compose(
      f"The tag set {format_tags(asked)} asked for does not exist in "
      f"{handle!r}.",
      f"The model's graph variants have the tag sets: "
      f"{format_tag_sets(info.tag_sets)}.",
      f"Pass tags= one of those, or leave tags=None to load "
      f"{format_tags(info.default_tags)}.",
      context(info, handle, mode)),
      handle=handle, tags=asked, choices=tuple(info.tag_sets))


# -- signatures ---------------------------------------------------------------

def _signature_choices(info: Any, available: Mapping[str, Any]) -> list:
  names = sorted(available)
  if info.format is Format.TF2_SAVED_MODEL and info.has_call:
    names = [CALL] + names
  return names


def _signature_error(what: str, why: str, info: Any, tags, available,
                     handle, mode, asked) -> errors.SignatureError:
  names = _signature_choices(info, available)
  fix = ("Pass signature= one of: " + ", ".join(repr(n) for n in names) + "."
         if names else
         "This model cannot be called; it may be an asset-only or broken "
         "export. Use another version of the model.")
  return errors.SignatureError(
      errors.compose(what, why, fix, context(
          info, handle, mode, tags=format_tags(tags),
          signatures=", ".join(names) or "(none)")),
      handle=handle, signature=asked, choices=tuple(names))


def pick_signature(info: Any, tags: FrozenSet[str], signature: Optional[str],
                   *, handle: Optional[str] = None, mode: Any = None
                   ) -> Optional[str]:
  """Returns the signature to apply, by the rules in this module's docstring.

  Args:
    info: The ``ModelInfo``.
    tags: The tag set that will be loaded (from :func:`pick_tags`).
    signature: The signature asked for, or None.
    handle: The handle, quoted in errors.
    mode: The running mode, quoted in errors.

  Returns:
    The signature name, or None for a TF2 SavedModel's root ``__call__``.

  Raises:
    SignatureError: the signature asked for does not exist, or none can be
      picked automatically; the message lists the choices.
  """
  available = info.signatures_for(tags)
  if signature is not None and not isinstance(signature, str):
    raise _signature_error(
        f"signature={signature!r} is not a string.",
        "Signatures are looked up by name.", info, tags,
        available, handle, mode, signature)
  tf2 = info.format is Format.TF2_SAVED_MODEL
  if signature == CALL and tf2:
    if info.has_call:
      return None
    raise _signature_error(
        f"signature='__call__' was asked for, but the root object of "
        f"{handle!r} has no __call__.",
        "The model only has signatures (e.g. a Keras model.export() or a "
        "TF Serving export).", info, tags, available, handle, mode, signature)
  if signature is not None:
    if signature in available:
      return signature
    raise _signature_error(
        f"The signature {signature!r} asked for does not exist in "
        f"{handle!r} (tag set {format_tags(tags)}).",
        "A model can only be applied through the signatures it was exported "
        "with" + (" (TF1 Hub modules without a 'default' signature are "
                  "common, e.g. ELMo's 'tokens')" if not tf2 else "") + ".",
        info, tags, available, handle, mode, signature)
  if tf2:
    if info.has_call:
      return None
    if SERVING_DEFAULT in available:
      return SERVING_DEFAULT
  elif DEFAULT in available:
    return DEFAULT
  if len(available) == 1:
    return next(iter(available))
  if not available:
    why = "The model has no signatures" + (
        " and its root object has no __call__." if tf2 else ".")
  else:
    why = ("The model has several signatures and none of them is "
           + (f"{SERVING_DEFAULT!r}, and its root object has no __call__."
              if tf2 else f"{DEFAULT!r}."))
  raise _signature_error(
      f"No signature of {handle!r} can be picked automatically.", why, info,
      tags, available, handle, mode, None)


# -- outputs ------------------------------------------------------------------

def single_output_key(names: Iterable[str]) -> Optional[str]:
  """``"default"`` if among ``names``, else the only name, else None."""
  names = list(names)
  if DEFAULT in names:
    return DEFAULT
  if len(names) == 1:
    return names[0]
  return None


def check_outputs(signature_info: Any, output_key: Optional[str],
                  as_dict: Optional[bool], *, info: Any = None,
                  handle: Optional[str] = None, mode: Any = None,
                  signature: Optional[str] = None) -> None:
  """Validates ``output_key`` and ``as_dict`` against a signature's outputs.

  Args:
    signature_info: The picked ``SignatureInfo``, or None for ``__call__``.
    output_key: The output asked for, or None.
    as_dict: Whether all outputs are wanted as a dict (None: the default
      rule).
    info: The ``ModelInfo``, quoted in errors.
    handle: The handle, quoted in errors.
    mode: The running mode, quoted in errors.
    signature: The picked signature name, quoted in errors.

  Raises:
    SignatureError: the combination cannot work; the message lists the
      outputs that exist.
  """
  facts = context(info, handle, mode, signature=signature or CALL)
  if output_key is not None and as_dict:
    raise errors.SignatureError(errors.compose(
        f"output_key={output_key!r} and as_dict=True were both given.",
        "output_key returns one output; as_dict=True returns all of them.",
        "Pass only one of them.", facts), handle=handle, output_key=output_key)
  if signature_info is None:
    if as_dict:
      raise errors.SignatureError(errors.compose(
          "as_dict=True needs a signature, but the root __call__ was picked.",
          "__call__ returns whatever structure the model's function returns.",
          "Pass signature= one of the model's signatures, or drop as_dict.",
          facts), handle=handle, as_dict=as_dict)
    return
  names = list(signature_info.outputs)
  if output_key is not None:
    if output_key not in signature_info.outputs:
      raise errors.SignatureError(errors.compose(
          f"The output {output_key!r} asked for does not exist in signature "
          f"{signature!r}.",
          f"Its outputs are: {format_tensors(signature_info.outputs)}.",
          f"Pass output_key= one of {errors.choices(names)}, or "
          f"as_dict=True for all of them.", facts),
          handle=handle, output_key=output_key, choices=tuple(sorted(names)))
    return
  if as_dict is False and single_output_key(names) is None:
    raise errors.SignatureError(errors.compose(
        f"as_dict=False was asked for, but signature {signature!r} has "
        f"several outputs and none is named 'default'.",
        f"Its outputs are: {format_tensors(signature_info.outputs)}.",
        f"Pass output_key= one of {errors.choices(names)}, or as_dict=True.",
        facts), handle=handle, as_dict=as_dict, choices=tuple(sorted(names)))


def select_output(outputs: Any, output_key: Optional[str],
                  as_dict: Optional[bool]) -> Any:
  """Applies the output rule to what a signature returned.

  Args:
    outputs: A signature's result, normally a dict.
    output_key: From the request (validated by :func:`check_outputs`).
    as_dict: From the request.

  Returns:
    The dict, or the picked tensor.
  """
  if not isinstance(outputs, Mapping) or as_dict:
    return outputs
  if output_key is not None:
    return outputs[output_key]
  key = single_output_key(outputs)
  return outputs if key is None else outputs[key]


# -- inputs -------------------------------------------------------------------

def _is_tensor_like(value: Any, tf: Any) -> bool:
  return isinstance(value, (tf.Tensor, tf.Variable, tf.SparseTensor,
                            tf.RaggedTensor)) or tf.is_tensor(value)


def prepare_inputs(signature_info: Any, inputs: Any,
                   kwargs: Optional[Mapping[str, Any]] = None,
                   facts: Optional[Mapping[str, Any]] = None
                   ) -> Dict[str, Any]:
  """Turns what a user passed into the keyword inputs of a signature.

  ``inputs`` is a dict keyed by the signature's input names, or a bare value
  when the signature has exactly one input; keyword arguments (as in
  ``signature(**inputs)``) are accepted too. Values that are not tensors are
  converted to the input's dtype; tensors must already have it.

  Args:
    signature_info: The ``SignatureInfo`` of the signature.
    inputs: The positional ``inputs`` given to the model, or None.
    kwargs: Keyword inputs given to the model.
    facts: Context quoted in errors (handle, folder, format, mode, signature).

  Returns:
    A dict from input name to tensor.

  Raises:
    InputError: names are missing or unknown, or the value has the wrong
      rank or shape; ``errors.InputTypeError`` (also an InputError) for a
      wrong dtype or kind (dense where a sparse or ragged input is
      declared, or the reverse). The message lists the expected inputs.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  expected = signature_info.inputs
  facts = dict(facts or {})
  listing = format_tensors(expected)
  kwargs = dict(kwargs or {})
  if isinstance(inputs, Mapping):
    given = dict(inputs)
    overlap = set(given) & set(kwargs)
    if overlap:
      raise errors.InputError(errors.compose(
          f"The inputs {errors.choices(overlap)} were given twice (in the "
          f"dict and as keywords).", f"Expected inputs: {listing}.",
          "Pass each input once.", facts), expected=listing)
    given.update(kwargs)
  elif inputs is None:
    given = kwargs
  elif kwargs:
    raise errors.InputError(errors.compose(
        "A bare input and keyword inputs were both given.",
        f"Expected inputs: {listing}.",
        "Pass a dict keyed by input name (or keywords).", facts),
        expected=listing)
  elif len(expected) == 1:
    given = {next(iter(expected)): inputs}
  elif _flat_composite_base(expected, inputs, tf) is not None:
    given = {_flat_composite_base(expected, inputs, tf): inputs}
  else:
    raise errors.InputError(errors.compose(
        f"A single bare input was given, but the signature has "
        f"{len(expected)} inputs.", f"Expected inputs: {listing}.",
        "Pass a dict keyed by input name: "
        + "{" + ", ".join(f"{k!r}: ..." for k in sorted(expected)) + "}.",
        facts), expected=listing)
  given = _spread_composites(given, expected, tf)
  given = _gather_components(given, expected, tf)
  missing = sorted(set(expected) - set(given))
  unknown = sorted(set(given) - set(expected))
  if missing or unknown:
    parts = []
    if missing:
      parts.append(f"missing {errors.choices(missing)}")
    if unknown:
      parts.append(f"unknown {errors.choices(unknown)}")
    raise errors.InputError(errors.compose(
        f"The inputs do not match the signature: {'; '.join(parts)}.",
        f"Expected inputs: {listing}.",
        "Pass a dict with exactly these input names.", facts),
        expected=listing, missing=tuple(missing), unknown=tuple(unknown))
  result = {}
  for name, value in given.items():
    result[name] = _convert_one(tf, expected[name], value, listing, facts)
  return result


_KIND_TEXT = {"sparse": "a tf.SparseTensor", "ragged": "a tf.RaggedTensor",
              "dense": "a dense tensor", "composite": "a composite tensor"}


def _kind_of(value: Any, tf: Any) -> str:
  if isinstance(value, (tf.SparseTensor, tf.compat.v1.SparseTensorValue)):
    return "sparse"
  if isinstance(value, (tf.RaggedTensor,
                        tf.compat.v1.ragged.RaggedTensorValue)):
    return "ragged"
  return "dense"


def _wrong_kind(spec: Any, given: str, listing: str,
                facts: Mapping[str, Any]) -> "errors.InputTypeError":
  expected = getattr(spec, "kind", "dense")
  how = {
      "sparse": "Pass a tf.SparseTensor (e.g. tf.sparse.from_dense(x)).",
      "ragged": "Pass a tf.RaggedTensor (e.g. tf.ragged.constant(lists) or "
                "tf.RaggedTensor.from_tensor(x)).",
      "dense": "Pass a dense tensor (e.g. tf.sparse.to_dense(x) or "
               "x.to_tensor()).",
  }.get(expected, "Pass a value of the declared kind.")
  return errors.InputTypeError(errors.compose(
      f"Input {spec.name!r} is {_KIND_TEXT.get(given, given)}, but the "
      f"signature declares {_KIND_TEXT.get(expected, expected)}.",
      f"Expected inputs: {listing}.", how, facts),
      expected=listing, input=spec.name, kind=expected, given_kind=given)


def _convert_composite(tf, spec: Any, value: Any, listing: str,
                       facts: Mapping[str, Any]) -> Any:
  """Checks/converts a value for a sparse or ragged input."""
  kind = spec.kind
  dtype = tf.as_dtype(spec.dtype)
  given = _kind_of(value, tf)
  if kind == "ragged" and given == "dense" and not tf.is_tensor(value):
    try:  # Nested Python lists: the natural spelling of a ragged value.
      value = tf.ragged.constant(value, dtype=dtype,
                                 ragged_rank=spec.ragged_rank)
    except (TypeError, ValueError):
      raise _wrong_kind(spec, given, listing, facts) from None
    given = "ragged"
  if given != kind:
    raise _wrong_kind(spec, given, listing, facts)
  if isinstance(value, tf.compat.v1.SparseTensorValue):
    value = tf.SparseTensor(value.indices, value.values, value.dense_shape)
  if isinstance(value, tf.compat.v1.ragged.RaggedTensorValue):
    value = tf.ragged.constant(value.to_list(), dtype=dtype,
                               ragged_rank=value.ragged_rank)
  if value.dtype != dtype:
    raise errors.InputTypeError(errors.compose(
        f"Input {spec.name!r} has dtype {value.dtype.name}, but the "
        f"signature expects {dtype.name}.", f"Expected inputs: {listing}.",
        f"Cast it first, e.g. tf.cast(x, tf.{dtype.name}) (for a "
        f"SparseTensor: x.with_values(tf.cast(x.values, tf.{dtype.name})); "
        f"for a RaggedTensor: tf.cast(x, tf.{dtype.name})).", facts),
        expected=listing, input=spec.name)
  if kind == "ragged":
    rank = getattr(spec, "ragged_rank", None)
    if rank is not None and value.ragged_rank != rank:
      raise errors.InputError(errors.compose(
          f"Input {spec.name!r} has ragged_rank {value.ragged_rank}, but the "
          f"signature expects ragged_rank {rank}.",
          f"Expected inputs: {listing}.",
          f"Build it with ragged_rank={rank} (e.g. tf.ragged.constant(lists, "
          f"ragged_rank={rank})).", facts),
          expected=listing, input=spec.name)
    splits = getattr(spec, "row_splits_dtype", None)
    if splits is not None and value.row_splits.dtype.name != splits:
      value = value.with_row_splits_dtype(tf.as_dtype(splits))
  if spec.shape is not None:
    want = tf.TensorShape(list(spec.shape))
    if not want.is_compatible_with(value.shape):
      raise errors.InputError(errors.compose(
          f"Input {spec.name!r} has shape {value.shape}, but the signature "
          f"expects {want}.", f"Expected inputs: {listing}.",
          "Reshape or batch the input to match (None is any size).", facts),
          expected=listing, input=spec.name)
  return value


def _flat_names(base: str, value: Any, tf: Any) -> Optional[list]:
  """The component names ``tf.saved_model.load`` gives a composite input
  named ``base`` (see :func:`flat_composite_inputs`), or None."""
  kind = _kind_of(value, tf)
  if kind == "sparse":
    return [f"{base}_indices", f"{base}_values", f"{base}_dense_shape"]
  if kind == "ragged":
    count = len(tf.nest.flatten(value, expand_composites=True))
    return [f"{base}_component_{i}" for i in range(count)]
  return None


def _flat_composite_base(expected: Mapping[str, Any], value: Any, tf: Any
                         ) -> Optional[str]:
  """For a bare sparse/ragged value given to a signature whose inputs are
  exactly one composite's components (``x_indices``, ``x_values``,
  ``x_dense_shape``, or ``x_component_0``, ...), the base name ``x``."""
  if _kind_of(value, tf) == "dense":
    return None
  bases = set()
  for key in expected:
    for suffix in ("_indices", "_values", "_dense_shape"):
      if key.endswith(suffix):
        bases.add(key[:-len(suffix)])
    if "_component_" in key:
      bases.add(key.rsplit("_component_", 1)[0])
  for base in bases:
    names = _flat_names(base, value, tf)
    if names is not None and sorted(names) == sorted(expected):
      return base
  return None


def _spread_composites(given: Mapping[str, Any], expected: Mapping[str, Any],
                       tf: Any) -> Dict[str, Any]:
  """Spreads a sparse/ragged value given under ``x`` over the components a
  signature takes instead (TF2 signatures of converted TF1 modules, and
  TF1 signatures as ``tf.saved_model.load`` flattened them)."""
  result = dict(given)
  for key, value in given.items():
    if key in expected:
      continue
    names = _flat_names(key, value, tf)
    if not names or not all(n in expected for n in names):
      continue
    del result[key]
    if isinstance(value, tf.compat.v1.SparseTensorValue):
      value = tf.SparseTensor(value.indices, value.values, value.dense_shape)
    for name, part in zip(names, tf.nest.flatten(value,
                                                 expand_composites=True)):
      result[name] = part
  return result


def _gather_components(given: Mapping[str, Any], expected: Mapping[str, Any],
                       tf: Any) -> Dict[str, Any]:
  """Builds a declared sparse/ragged input from its components given as
  ``tf.saved_model.load`` names them (``x_indices``, ``x_values``,
  ``x_dense_shape``; ``x_component_0`` = flat values, ``x_component_1``...
  = row splits), so calls written for ``hub.load``'s signatures work."""
  result = dict(given)
  for key, spec in expected.items():
    kind = getattr(spec, "kind", "dense")
    if key in given or kind not in ("sparse", "ragged"):
      continue
    if kind == "sparse":
      names = [f"{key}_indices", f"{key}_values", f"{key}_dense_shape"]
      if not all(n in given for n in names):
        continue
      parts = [result.pop(n) for n in names]
      result[key] = tf.SparseTensor(
          tf.convert_to_tensor(parts[0], tf.int64),
          tf.convert_to_tensor(parts[1], tf.as_dtype(spec.dtype)),
          tf.convert_to_tensor(parts[2], tf.int64))
      continue
    rank = getattr(spec, "ragged_rank", None) or 1
    names = [f"{key}_component_{i}" for i in range(rank + 1)]
    if not all(n in given for n in names):
      continue
    parts = [result.pop(n) for n in names]
    splits = tf.as_dtype(getattr(spec, "row_splits_dtype", None) or "int64")
    result[key] = tf.RaggedTensor.from_nested_row_splits(
        tf.convert_to_tensor(parts[0], tf.as_dtype(spec.dtype)),
        [tf.convert_to_tensor(p, splits) for p in parts[1:]])
  return result


def flat_composite_inputs(signature_info: Any, feed: Mapping[str, Any]
                          ) -> Dict[str, Any]:
  """Spreads sparse and ragged inputs over the keywords TF2 expects.

  ``tf.saved_model.load`` gives a TF1 signature with a sparse input ``x``
  the keyword arguments ``x_indices``, ``x_values`` and ``x_dense_shape``,
  and one with another composite input (a ragged tensor) ``x_component_0``,
  ``x_component_1``, ... (its ``tf.nest.flatten(x, expand_composites=True)``
  components), as ``hub.load`` users call them by hand.

  Args:
    signature_info: The TF1 signature's ``SignatureInfo``.
    feed: What :func:`prepare_inputs` returned.

  Returns:
    The keyword arguments of the loaded signature function.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  result = {}
  for name, value in feed.items():
    spec = signature_info.inputs.get(name)
    kind = getattr(spec, "kind", "dense")
    if kind == "sparse":
      result[f"{name}_indices"] = value.indices
      result[f"{name}_values"] = value.values
      result[f"{name}_dense_shape"] = value.dense_shape
    elif kind != "dense":
      for i, part in enumerate(tf.nest.flatten(value, expand_composites=True)):
        result[f"{name}_component_{i}"] = part
    else:
      result[name] = value
  return result


def _convert_one(tf, spec: Any, value: Any, listing: str,
                 facts: Mapping[str, Any]) -> Any:
  """Converts/checks one input against its ``TensorInfo``."""
  kind = getattr(spec, "kind", "dense")
  if kind in ("sparse", "ragged"):
    return _convert_composite(tf, spec, value, listing, facts)
  dtype = tf.as_dtype(spec.dtype)
  given = _kind_of(value, tf)
  if kind == "dense" and given != "dense":
    raise _wrong_kind(spec, given, listing, facts)
  if _is_tensor_like(value, tf):
    if value.dtype != dtype:
      raise errors.InputTypeError(errors.compose(
          f"Input {spec.name!r} has dtype {value.dtype.name}, but the "
          f"signature expects {dtype.name}.", f"Expected inputs: {listing}.",
          f"Cast it first, e.g. tf.cast(x, tf.{dtype.name}).", facts),
          expected=listing, input=spec.name)
    tensor = value
  else:
    try:
      tensor = tf.convert_to_tensor(value, dtype=dtype)
    except (TypeError, ValueError) as e:
      raise errors.InputTypeError(errors.compose(
          f"Input {spec.name!r} cannot be converted to {dtype.name}.",
          f"{e} Expected inputs: {listing}.",
          f"Pass a value of dtype {dtype.name}.", facts),
          expected=listing, input=spec.name) from None
  if spec.shape is not None and not spec.is_composite:
    want = tf.TensorShape(list(spec.shape))
    have = getattr(tensor, "shape", None)
    if have is not None and not want.is_compatible_with(have):
      raise errors.InputError(errors.compose(
          f"Input {spec.name!r} has shape {have}, but the signature expects "
          f"{want}.", f"Expected inputs: {listing}.",
          "Reshape or batch the input to match (None is any size).", facts),
          expected=listing, input=spec.name)
  return tensor
