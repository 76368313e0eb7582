"""Ops from add-on libraries: found in the protos, imported, or named to install.

Many published models use ops that TensorFlow itself does not register: BERT
preprocessors use ``tensorflow_text`` ops (``CaseFoldUTF8``,
``WordpieceTokenizeWithOffsets``, ...), which exist only once
``import tensorflow_text`` has run. Without it TensorFlow fails deep in a
load with ``Op type not registered 'CaseFoldUTF8' in binary running on ...``.

:func:`ensure_op_libraries`, called by every preflight (``load``,
``KerasLayer``, ``Module``/``load_module_spec``, ``convert``), reads the op
types of every graph and function of the model from its protos (nothing
runs), finds those the running TensorFlow does not register, maps them to the
library that provides them, imports that library when it is installed
(logged with absl), and otherwise raises
:class:`~hub_adapter.errors.BackendUnavailableError` naming the ops, the pip
package and the release matching the running TensorFlow. :func:`needs`
gives the same facts for ``hub-adapter inspect``.

The table (:data:`LIBRARIES`, data in ``hub_adapter/_op_library_table.py``)
is written by ``tools/make_op_library_table.py``, never by hand:

- ``tensorflow_text``: by registry diff, i.e. in a fresh process the list of
  every op in TensorFlow's global registry (``TF_GetAllOpList``) before and
  after ``import tensorflow_text``, on TensorFlow 2.15.1 with
  tensorflow-text 2.15.0 and on TensorFlow 2.21.0 with tensorflow-text
  2.21.1 (the union; both list the same 38 ops);
- ``tensorflow_decision_forests``, ``tensorflow_io`` and ``tensorflow_addons``
  (not installable next to the tested stacks): by scanning the
  ``REGISTER_OP("...")`` literals of their C++ sources at the commits
  recorded in each entry's ``made_by``; ``tensorflow_io`` and
  ``tensorflow_addons`` also claim their op-name namespaces (``IO>``,
  ``Addons>``), as ``tensorflow_text`` claims ``TFText>``.

Ops that are neither registered nor in the table are reported too (a
``BackendUnavailableError`` saying no known library provides them).
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import threading
from importlib import metadata
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

from hub_adapter import errors
from hub_adapter._op_library_table import LIBRARIES

__all__ = ["LIBRARIES", "OpLibraryNeed", "op_types", "library_for_op",
           "requirement", "needs", "ensure_op_libraries",
           "ensure_for_saved_model", "describe_needs"]


@dataclasses.dataclass(frozen=True)
class OpLibraryNeed:
  """One library a model's ops come from.

  Attributes:
    library: The import name (``"tensorflow_text"``); None for ops that no
      known library provides.
    pip: The pip package (``"tensorflow-text"``); None when unknown.
    requirement: What to install for the running TensorFlow, e.g.
      ``"tensorflow-text==2.21.*"``; None when unknown.
    ops: The model's op types that come from this library, sorted.
    missing: Those of ``ops`` the running TensorFlow does not register now.
    installed_version: The installed package's version, or None.
    importable: Whether the package is installed (its import can be found;
      it has not necessarily been imported).
    loaded: Whether it has been imported in this process.
  """
  library: Optional[str]
  pip: Optional[str]
  requirement: Optional[str]
  ops: Tuple[str, ...]
  missing: Tuple[str, ...]
  installed_version: Optional[str]
  importable: bool
  loaded: bool


# -- the table ----------------------------------------------------------------

def _index() -> Tuple[Dict[str, str], Tuple[Tuple[str, str], ...]]:
  by_op: Dict[str, str] = {}
  prefixes: List[Tuple[str, str]] = []
  for library, entry in sorted(LIBRARIES.items()):
    for op in entry.get("ops", ()):
      by_op.setdefault(op, library)
    for prefix in entry.get("prefixes", ()):
      prefixes.append((prefix, library))
  return by_op, tuple(prefixes)


_BY_OP, _PREFIXES = _index()


def library_for_op(op_type: str) -> Optional[str]:
  """The library that registers ``op_type``, or None when unknown.

  Args:
    op_type: An op type name, e.g. ``"CaseFoldUTF8"``.

  Returns:
    The import name, e.g. ``"tensorflow_text"``.
  """
  library = _BY_OP.get(op_type)
  if library is not None:
    return library
  for prefix, owner in _PREFIXES:
    if op_type.startswith(prefix):
      return owner
  return None


def _tf_version_text() -> str:
  """The running TensorFlow's version, without importing it if it is not."""
  import sys  # pylint: disable=g-import-not-at-top
  tf = sys.modules.get("tensorflow")
  if tf is not None and getattr(tf, "__version__", None):
    return tf.__version__
  for dist in ("tensorflow", "tensorflow-cpu", "tensorflow-gpu",
               "tensorflow-macos", "tf-nightly"):
    try:
      return metadata.version(dist)
    except metadata.PackageNotFoundError:
      continue
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,redefined-outer-name
  return tf.__version__


def requirement(library: str, tf_version: Optional[str] = None
                ) -> Optional[str]:
  """The pip requirement of ``library`` matching the running TensorFlow.

  Libraries numbered after TensorFlow (tensorflow-text 2.21.x for TF 2.21)
  get ``"tensorflow-text==2.21.*"``; others get the bare pip name (their
  compatibility table then says which release).

  Args:
    library: An import name of the table.
    tf_version: TensorFlow's version (default: the running one).

  Returns:
    The requirement, or None for a library the table does not know.
  """
  entry = LIBRARIES.get(library)
  if entry is None:
    return None
  if not entry.get("follows_tensorflow"):
    return entry["pip"]
  major_minor = ".".join((tf_version or _tf_version_text()).split(".")[:2])
  return f"{entry['pip']}=={major_minor}.*"


def _installed_version(library: str) -> Optional[str]:
  entry = LIBRARIES.get(library, {})
  try:
    return metadata.version(entry.get("pip", library))
  except metadata.PackageNotFoundError:
    return None


def _importable(library: str) -> bool:
  try:
    return importlib.util.find_spec(library) is not None
  except (ImportError, ValueError):
    return False


# -- ops of a model -------------------------------------------------------------

_cache_lock = threading.Lock()
# id(proto) -> (proto, op types); the proto is kept so its id stays unique.
_op_cache: Dict[int, Tuple[Any, FrozenSet[str]]] = {}
_OP_CACHE_SIZE = 16


def op_types(saved_model: Any) -> FrozenSet[str]:
  """Every op type a ``SavedModel`` proto's graphs and functions use.

  Function calls (nodes whose op names a function of the library) are left
  out; everything else must be registered for TensorFlow to import it.

  Args:
    saved_model: A ``saved_model_pb2.SavedModel``.

  Returns:
    The op type names.
  """
  key = id(saved_model)
  with _cache_lock:
    hit = _op_cache.get(key)
    if hit is not None and hit[0] is saved_model:
      return hit[1]
  found = set()
  functions = set()
  for meta_graph in saved_model.meta_graphs:
    graph_def = meta_graph.graph_def
    for function in graph_def.library.function:
      functions.add(function.signature.name)
      found.update(node.op for node in function.node_def)
    for gradient in graph_def.library.gradient:
      functions.add(gradient.gradient_func)
    found.update(node.op for node in graph_def.node)
  result = frozenset(found - functions)
  with _cache_lock:
    _op_cache[key] = (saved_model, result)
    while len(_op_cache) > _OP_CACHE_SIZE:
      _op_cache.pop(next(iter(_op_cache)))
  return result


def _registered(op_type: str) -> bool:
  from tensorflow.python.framework import op_def_registry  # pylint: disable=g-import-not-at-top,g-direct-tensorflow-import
  return op_def_registry.get(op_type) is not None


def needs(saved_model: Any, *, registry: Optional[bool] = None
          ) -> Tuple[OpLibraryNeed, ...]:
  """The libraries a model's ops come from, and ops nobody provides.

  A library is listed when the model uses any op of its table entry, whether
  or not it is imported yet; ops that are not registered and belong to no
  known library are listed under ``library=None``.

  Args:
    saved_model: The model's ``SavedModel`` proto.
    registry: Whether to ask TensorFlow's op registry which ops are
      registered. None (the default): only when TensorFlow is imported
      already, so ``hub-adapter inspect`` never imports it. Without the
      registry the answer comes from the static table alone: a library's
      ops count as registered when the library is imported, and ops of no
      known library are not listed (only the registry can tell them from
      TensorFlow's own).

  Returns:
    One :class:`OpLibraryNeed` per library (sorted by name), then one for
    unknown ops if there are any.
  """
  import sys  # pylint: disable=g-import-not-at-top
  if registry is None:
    registry = "tensorflow" in sys.modules

  def registered(op: str, library: Optional[str]) -> bool:
    if registry:
      return _registered(op)
    return library is None or library in sys.modules

  by_library: Dict[Optional[str], List[str]] = {}
  for op in sorted(op_types(saved_model)):
    library = library_for_op(op)
    if library is None and registered(op, library):
      continue
    by_library.setdefault(library, []).append(op)
  result = []
  for library in sorted(by_library, key=lambda k: (k is None, k or "")):
    ops = tuple(by_library[library])
    missing = tuple(op for op in ops if not registered(op, library))
    if library is None:
      result.append(OpLibraryNeed(None, None, None, ops, missing, None,
                                  False, False))
      continue
    result.append(OpLibraryNeed(
        library=library, pip=LIBRARIES[library]["pip"],
        requirement=requirement(library), ops=ops, missing=missing,
        installed_version=_installed_version(library),
        importable=_importable(library), loaded=library in sys.modules))
  return tuple(result)


# -- importing ----------------------------------------------------------------

def _import(library: str) -> None:
  """Imports ``library``; tensorflow_text 2.15 imports tensorflow_hub, which
  needs hub_adapter's pkg_resources stand-in on new setuptools."""
  try:
    importlib.import_module(library)
  except ModuleNotFoundError as e:
    if e.name != "pkg_resources":
      raise
    from hub_adapter._hub_import import import_tensorflow_hub  # pylint: disable=g-import-not-at-top
    import_tensorflow_hub()
    importlib.import_module(library)


def _where(context: Mapping[str, Any]) -> Dict[str, Any]:
  return {k: getattr(v, "value", v) for k, v in context.items()}


def ensure_for_saved_model(saved_model: Any, *, handle: Optional[str] = None,
                           path: Optional[str] = None, format: Any = None,
                           mode: Any = None, operation: Any = None
                           ) -> Tuple[str, ...]:
  """Makes every op of a model registered, importing libraries as needed.

  Args:
    saved_model: The model's ``SavedModel`` proto.
    handle: The handle, for messages.
    path: The model folder, for messages.
    format: The model format (``support.Format``), for messages.
    mode: The running mode, for messages (default: detected).
    operation: What is being done (``"load"``, ``"fine_tune"``,
      ``"convert"``, ...), for messages.

  Returns:
    The libraries imported by this call (empty when nothing was needed).

  Raises:
    BackendUnavailableError: a needed library is not installed, fails to
      import, or does not register every op (a release that does not match
      the running TensorFlow); or ops are unregistered that no known library
      provides. The message names the ops, the pip package and the release
      matching the running TensorFlow.
  """
  unregistered = sorted(op for op in op_types(saved_model)
                        if not _registered(op))
  if not unregistered:
    return ()
  from absl import logging  # pylint: disable=g-import-not-at-top
  if mode is None:
    from hub_adapter import runtime  # pylint: disable=g-import-not-at-top
    mode = runtime.current_mode()
  tf_version = _tf_version_text()
  shown = handle if handle is not None else path
  what_op = getattr(operation, "value", operation) or "load"
  context = _where({"handle": handle, "folder": path, "format": format,
                    "mode": mode, "operation": what_op,
                    "TensorFlow": tf_version})
  by_library: Dict[Optional[str], List[str]] = {}
  for op in unregistered:
    by_library.setdefault(library_for_op(op), []).append(op)
  imported = []
  for library in sorted(k for k in by_library if k is not None):
    ops = by_library[library]
    wanted = requirement(library, tf_version)
    pip = LIBRARIES[library]["pip"]
    compat = LIBRARIES[library].get("compatibility")
    release = (f"`pip install \"{wanted}\"` (the release built for "
               f"TensorFlow {tf_version})" if wanted != pip else
               f"`pip install {pip}`, the release built for TensorFlow "
               f"{tf_version}" + (f" (see {compat})" if compat else ""))
    if not _importable(library):
      raise errors.BackendUnavailableError(errors.compose(
          f"Cannot {what_op} {shown!r}: it uses ops from {library}, which is "
          "not installed: " + ", ".join(ops) + ".",
          f"These ops are not part of TensorFlow {tf_version}; they register "
          f"when the {library} package (pip: {pip}) is imported, and it "
          "cannot be found in this Python environment.",
          f"Install it with {release}; hub_adapter then imports it by "
          "itself before loading.", context),
          handle=handle, library=library, pip=pip, requirement=wanted,
          ops=tuple(ops))
    version = _installed_version(library)
    logging.info("hub_adapter: importing %s %s for ops %s of %r.", library,
                 version or "", ", ".join(ops), shown)
    try:
      _import(library)
    except Exception as e:  # pylint: disable=broad-except
      # An ImportError, or TensorFlow's NotFoundError for a .so built for
      # another TensorFlow: either way the installed release does not fit.
      raise errors.BackendUnavailableError(errors.compose(
          f"Cannot {what_op} {shown!r}: it needs {library} for ops "
          + ", ".join(ops) + f", and importing the installed {pip} "
          f"{version or ''} failed.".replace("  ", " "),
          f"{type(e).__name__}: {str(e).strip()[:1000]} (a release built "
          f"for another TensorFlow than {tf_version} fails like this).",
          f"Install the matching release: {release}.", context),
          handle=handle, library=library, pip=pip, requirement=wanted,
          ops=tuple(ops)) from e
    imported.append(library)
    still = [op for op in ops if not _registered(op)]
    if still:
      raise errors.BackendUnavailableError(errors.compose(
          f"Cannot {what_op} {shown!r}: {library} {version or ''} is "
          "imported but does not register ops the model uses: "
          + ", ".join(still) + ".",
          f"The installed {pip} release is older or newer than the one the "
          f"model was made with, or not built for TensorFlow {tf_version}.",
          f"Install the matching release: {release}.", context),
          handle=handle, library=library, pip=pip, requirement=wanted,
          ops=tuple(still))
  unknown = by_library.get(None)
  if unknown:
    known = ", ".join(sorted(LIBRARIES))
    raise errors.UnknownOpError(errors.compose(
        f"Cannot {what_op} {shown!r}: it uses ops that TensorFlow "
        f"{tf_version} does not register and that no library hub_adapter "
        "knows provides: " + ", ".join(repr(op) for op in unknown) + ".",
        "The model was made with a newer TensorFlow, or with a custom op "
        f"library (hub_adapter's table covers {known}).",
        "Import the library that defines these ops before loading (its "
        "ops then register and the load proceeds), or use the TensorFlow "
        "version the model was made with.", context),
        handle=handle, ops=tuple(unknown))
  return tuple(imported)


def ensure_op_libraries(info: Any, handle: Optional[str] = None, *,
                        mode: Any = None, operation: Any = None
                        ) -> Tuple[str, ...]:
  """:func:`ensure_for_saved_model` for a ``ModelInfo`` (the preflight step).

  Args:
    info: The model's :class:`~hub_adapter.model_info.ModelInfo`.
    handle: The handle as given.
    mode: The running mode (default: detected).
    operation: What is being done, for messages.

  Returns:
    The libraries imported by this call.

  Raises:
    BackendUnavailableError: see :func:`ensure_for_saved_model`.
    ModelFormatError: ``saved_model.pb`` cannot be read.
  """
  saved_model = info.saved_model
  if saved_model is None:
    from hub_adapter import reader  # pylint: disable=g-import-not-at-top
    saved_model = reader.read_saved_model(info.path, handle)
  return ensure_for_saved_model(
      saved_model, handle=handle, path=info.path, format=info.format,
      mode=mode, operation=operation)


def describe_needs(found: Iterable[OpLibraryNeed]) -> List[str]:
  """Lines for ``hub-adapter inspect`` (without a heading)."""
  lines = []
  for need in found:
    if need.library is None:
      lines.append("  (no known library): " + ", ".join(need.ops)
                   + " -- not registered by this TensorFlow")
      continue
    if need.loaded:
      state = f"imported ({need.installed_version or '?'})"
    elif need.importable:
      state = (f"installed ({need.installed_version or '?'}), importable; "
               "imported on load")
    else:
      state = f"NOT installed: pip install \"{need.requirement}\""
    lines.append(f"  {need.library}: {state}; ops: " + ", ".join(need.ops))
  return lines
