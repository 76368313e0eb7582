"""Writing TF1 Hub module folders: ``ModuleSpec.export`` and ``Module.export``.

A TF1 Hub module folder holds

- ``saved_model.pb``: a ``SavedModel`` with one meta graph per tag set, in
  which every asset constant holds a placeholder and the
  ``saved_model_assets`` collection names its file in ``assets/``;
- ``variables/variables.*``: one TF1 (V2 format, sharded) checkpoint shared
  by all graph variants, keyed by the variables' names in the module's own
  graph (no module scope; a partitioned variable is stored once under its
  full name, as slices);
- ``assets/``: the asset files (always present, maybe empty);
- ``tfhub_module.pb``: a format-3 ``ModuleDef``.

Both export paths write the checkpoint from a separate, private graph that
holds only the spec's variables (imported from its meta graphs, so
partitioning and names are exactly those of the spec). ``export_spec`` fills
it from a checkpoint; ``export_module`` copies the values out of the
caller's session, so exporting never adds ops to the caller's graph and
works when that graph is finalized (e.g. under a ``MonitoredSession``).

Export is atomic: everything is written into a hidden sibling folder, which
is renamed to the target only when complete; on any failure it is removed,
so no half-written module is left behind. ``path`` may also be a
``file://`` URL (written as the local folder it names) or a folder of
another TensorFlow file system (``gs://``, ``ram://``, ...: the module is
written locally, then copied there with ``tf.io.gfile``, its
``tfhub_module.pb`` last). The target may not exist yet or
may be an empty folder. As with tensorflow_hub 0.15, it may also be a folder
holding other files: the module's entries (``assets/``, ``variables/``,
``saved_model.pb``, ``tfhub_module.pb``) are then moved into it, the
``tfhub_module.pb`` that marks it a module last; a folder that already holds
any of those entries is refused before anything is written, so an existing
module is never overwritten or mixed with another.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.parse
import uuid
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from hub_adapter import errors
from hub_adapter import runtime
from hub_adapter.tf1 import assets
from hub_adapter.tf1 import hub_protos

SAVED_MODEL_FILENAME = hub_protos.SAVED_MODEL_FILENAME
VARIABLES_DIR = hub_protos.VARIABLES_DIR
VARIABLES_PREFIX = hub_protos.VARIABLES_PREFIX
ASSETS_DIR = hub_protos.ASSETS_DIR

VariableMap = Dict[str, Union[Any, List[Any]]]


# Public entry points ----------------------------------------------------------

def export_spec(spec, path: str, checkpoint_path: str,
                name_transform_fn: Optional[Callable[[str], str]] = None
                ) -> str:
  """Exports a spec with variable values read from a checkpoint.

  Args:
    spec: A ``NativeModuleSpec``.
    path: The folder to create.
    checkpoint_path: A checkpoint prefix, or a folder whose latest checkpoint
      is used.
    name_transform_fn: Maps a variable's name in the module to its name in
      the checkpoint (default: the same name).

  Returns:
    ``path``.

  Raises:
    InputError: no checkpoint is given, or it lacks a variable of the module
      or holds it with another shape.
    HandleError: the checkpoint cannot be found, or ``path`` is a non-empty
      folder or cannot be written.
  """
  tf = runtime.tf()
  transform = name_transform_fn or (lambda name: name)
  prefix = _checkpoint_prefix(checkpoint_path, path)
  with tf.Graph().as_default() as graph:
    variable_map = _import_variables(spec)
    assignment = {transform(name): value
                  for name, value in variable_map.items()}
    _check_checkpoint(prefix, assignment, path)
    if assignment:
      tf.compat.v1.train.init_from_checkpoint(prefix, assignment)
    with tf.compat.v1.Session(graph=graph) as session:
      session.run(tf.compat.v1.global_variables_initializer())
      return _write_module(spec, path,
                           lambda target: _save(variable_map, session, target))


def export_module(module, path: str, session) -> str:
  """Exports a Module's spec with the values its variables have in a session.

  Args:
    module: A ``hub_adapter.tf1.module.Module``; its ``variable_map`` keys are
      the spec's variable names, its values the variables (lists for
      partitioned ones) in ``session``'s graph.
    path: The folder to create.
    session: A session (or anything with ``run`` and ``graph``) of the graph
      the module was instantiated in.

  Returns:
    ``path``.

  Raises:
    InputError: ``session`` runs another graph than the module's.
    HandleError: ``path`` is a non-empty folder or cannot be written.
  """
  tf = runtime.tf()
  spec = _spec_of(module)
  live_map = dict(module.variable_map)
  graphs = {v.graph for v in _flat(live_map.values())}
  session_graph = getattr(session, "graph", None)
  if graphs and session_graph is not None and graphs != {session_graph}:
    raise errors.InputError(errors.compose(
        "Module.export got a session that runs another graph than the "
        "module's.",
        "The variable values are read from the session, so it must run the "
        "graph the Module was created in.",
        "Pass the session of the module's graph (the one you initialized or "
        "trained it in).", {"path": path}))
  try:
    values = session.run(live_map) if live_map else {}
  except tf.errors.FailedPreconditionError as e:
    raise errors.InputError(errors.compose(
        "Module.export cannot read the module's variables from the session.",
        f"They are not initialized: {e.message.splitlines()[0]}",
        "Run tf.compat.v1.global_variables_initializer() (or restore a "
        "checkpoint) in the session before exporting.",
        {"path": path})) from e
  with tf.Graph().as_default() as graph:
    variable_map = _import_variables(spec)
    _check_values(variable_map, values, path)
    with tf.compat.v1.Session(graph=graph) as export_session:
      export_session.run(tf.compat.v1.global_variables_initializer())
      _load_values(variable_map, values, export_session)
      return _write_module(
          spec, path,
          lambda target: _save(variable_map, export_session, target))


# The spec's variables in a private graph --------------------------------------

def _spec_of(module):
  for attribute in ("spec", "_spec"):
    spec = getattr(module, attribute, None)
    if spec is not None and hasattr(spec, "saved_model"):
      return spec
  raise errors.InputError(errors.compose(
      f"export_module() got a {type(module).__name__}, which has no module "
      "spec.", "",
      "Pass a hub_adapter Module (hub_adapter.Module(spec_or_handle))."))


def _import_variables(spec) -> VariableMap:
  """Imports every graph variant's variables into the default graph.

  Returns:
    A map from the spec's variable name to its variable, or to the list of
    its partitions ordered by offset, as ``Module.variable_map`` has it. A
    variable present in several graph variants appears once.
  """
  tf = runtime.tf()
  from tensorflow.core.protobuf import meta_graph_pb2  # pylint: disable=g-import-not-at-top
  graph = tf.compat.v1.get_default_graph()
  result: VariableMap = {}
  for index, meta_graph in enumerate(spec.saved_model.meta_graphs):
    if hub_protos.GLOBAL_VARIABLES not in meta_graph.collection_def:
      continue
    only_variables = meta_graph_pb2.MetaGraphDef()
    only_variables.CopyFrom(meta_graph)
    for key in list(only_variables.collection_def):
      if key != hub_protos.GLOBAL_VARIABLES:
        del only_variables.collection_def[key]
    only_variables.ClearField("signature_def")
    scope = f"variant_{index}"
    # Resource variables find their state by shared_name, which importing
    # under a scope keeps; without a prefix, the variables of two variants
    # would be one resource and their initializers would overwrite each other.
    for node in only_variables.graph_def.node:
      shared = node.attr.get("shared_name")
      if shared is not None and shared.s:
        shared.s = scope.encode() + b"/" + shared.s
    before = set(graph.get_collection(hub_protos.GLOBAL_VARIABLES))
    tf.compat.v1.train.import_meta_graph(
        only_variables, import_scope=scope, clear_devices=True)
    imported = [v for v in graph.get_collection(hub_protos.GLOBAL_VARIABLES)
                if v not in before]
    for name, value in _variable_map(imported, scope + "/").items():
      result.setdefault(name, value)
  return result


def _variable_map(variables, scope: str) -> VariableMap:
  """Groups variables by their name without ``scope``; partitions go into
  a list ordered by their offset in the full variable."""
  plain: VariableMap = {}
  parts: Dict[str, List[Tuple[int, Any]]] = {}
  for variable in variables:
    slice_info = variable._save_slice_info  # pylint: disable=protected-access
    if slice_info is None:
      plain[_strip(variable.op.name, scope)] = variable
    else:
      name = _strip(slice_info.full_name, scope)
      parts.setdefault(name, []).append((slice_info.var_offset[0], variable))
  for name, offsets in parts.items():
    plain[name] = [v for _, v in sorted(offsets, key=lambda p: p[0])]
  return plain


def _strip(name: str, scope: str) -> str:
  return name[len(scope):] if name.startswith(scope) else name


def _flat(values) -> List[Any]:
  flat = []
  for value in values:
    flat.extend(value if isinstance(value, (list, tuple)) else [value])
  return flat


def _check_values(variable_map: VariableMap, values: Mapping[str, Any],
                  path: str) -> None:
  """The module's values must fit the spec's variables, part for part."""
  problems = []
  for name, value in sorted(values.items()):
    target = variable_map.get(name)
    if target is None:
      problems.append(f"{name!r} is not a variable of the module's spec")
      continue
    targets = target if isinstance(target, list) else [target]
    got = value if isinstance(value, list) else [value]
    if len(targets) != len(got) or any(
        tuple(t.shape.as_list()) != tuple(getattr(g, "shape", ()))
        for t, g in zip(targets, got)):
      problems.append(
          f"{name!r} has shapes {[tuple(getattr(g, 'shape', ())) for g in got]}"
          f" but the spec has {[tuple(t.shape.as_list()) for t in targets]}")
  if problems:
    raise errors.InputError(errors.compose(
        "Module.export cannot write the module's variables.",
        "; ".join(problems) + ".",
        "Export a Module created from this spec without changing its "
        "variables' names or shapes.", {"path": path}))


def _load_values(variable_map: VariableMap, values: Mapping[str, Any],
                 session) -> None:
  tf = runtime.tf()
  assigns, feed = [], {}
  for name, value in values.items():
    targets = variable_map[name]
    targets = targets if isinstance(targets, list) else [targets]
    got = value if isinstance(value, list) else [value]
    for variable, array in zip(targets, got):
      placeholder = tf.compat.v1.placeholder(variable.dtype.base_dtype,
                                             variable.shape)
      assigns.append(variable.assign(placeholder, read_value=False))
      feed[placeholder] = array
  if assigns:
    session.run(assigns, feed_dict=feed)


def _save(variable_map: VariableMap, session, target_dir: str) -> None:
  """Writes ``target_dir/variables/variables.*`` (nothing when no
  variables, as tensorflow_hub did)."""
  tf = runtime.tf()
  variables_dir = os.path.join(target_dir, VARIABLES_DIR)
  os.makedirs(variables_dir, exist_ok=True)
  if not variable_map:
    return
  saver = tf.compat.v1.train.Saver(
      variable_map, sharded=True,
      write_version=tf.compat.v1.train.SaverDef.V2)
  saver.save(session, os.path.join(variables_dir, VARIABLES_PREFIX),
             write_meta_graph=False, write_state=False)


# Checkpoints ------------------------------------------------------------------

def _checkpoint_prefix(checkpoint_path, path: str) -> str:
  tf = runtime.tf()
  if not checkpoint_path:
    raise errors.InputError(errors.compose(
        "ModuleSpec.export needs checkpoint_path=...; none was given.",
        "The spec holds no variable values; they come from a checkpoint.",
        "Pass the prefix of a checkpoint that holds the module's variables, "
        "or create a Module, set its variables and call Module.export(path, "
        "session).", {"path": path}))
  checkpoint_path = os.fspath(checkpoint_path)
  if tf.io.gfile.isdir(checkpoint_path):
    latest = tf.train.latest_checkpoint(checkpoint_path)
    if latest is None:
      raise errors.HandleError(errors.compose(
          f"The folder {checkpoint_path!r} holds no checkpoint.",
          "ModuleSpec.export reads the variable values from a checkpoint.",
          "Pass the checkpoint prefix (e.g. '/tmp/train/model.ckpt-100').",
          {"path": path}))
    return latest
  if not tf.io.gfile.exists(checkpoint_path + ".index"):
    raise errors.HandleError(errors.compose(
        f"No checkpoint was found at {checkpoint_path!r}.",
        f"A checkpoint prefix P has a file P.index; "
        f"{checkpoint_path + '.index'!r} does not exist.",
        "Pass the checkpoint prefix (e.g. '/tmp/train/model.ckpt-100', or "
        "'MODULE/variables/variables' of an exported module).",
        {"path": path}))
  return checkpoint_path


def _check_checkpoint(prefix: str, assignment: Mapping[str, Any],
                      path: str) -> None:
  tf = runtime.tf()
  stored = dict(tf.train.list_variables(prefix))
  missing = sorted(name for name in assignment if name not in stored)
  wrong = []
  for name, value in sorted(assignment.items()):
    if name in stored:
      parts = value if isinstance(value, list) else [value]
      full = list(parts[0]._save_slice_info.full_shape) if isinstance(  # pylint: disable=protected-access
          value, list) else parts[0].shape.as_list()
      if list(stored[name]) != list(full):
        wrong.append(f"{name!r}: checkpoint {list(stored[name])}, module "
                     f"{list(full)}")
  if missing or wrong:
    why = []
    if missing:
      why.append(f"missing variables {errors.choices(missing)}")
    if wrong:
      why.append("shape mismatches " + "; ".join(wrong))
    raise errors.InputError(errors.compose(
        "The checkpoint does not hold the module's variables.",
        "It has " + " and ".join(why) + ". Its variables are "
        f"{errors.choices(list(stored)[:20])}"
        + (" ..." if len(stored) > 20 else "") + ".",
        "Pass name_transform_fn= mapping module names to checkpoint names "
        "(e.g. lambda name: 'scope/' + name), or the right checkpoint.",
        {"checkpoint": prefix, "path": path}))


# The folder -------------------------------------------------------------------

def _local_path(path: str) -> Optional[str]:
  """The local path for a plain path or a ``file://`` URL; None for other
  TensorFlow file systems (``gs://``, ``ram://``, ...)."""
  if path.startswith("file://"):
    return urllib.parse.unquote(urllib.parse.urlsplit(path).path)
  if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path):
    return None
  return path


def _write_module(spec, path: str, save_variables: Callable[[str], None]
                  ) -> str:
  """Writes the module folder at ``path``.

  Local folders (and ``file://`` URLs) are written into a temporary sibling
  that is renamed into place; other TensorFlow file systems get the folder
  written locally first, then copied with ``tf.io.gfile``.

  Returns:
    ``path`` as given (absolute for a plain local path).
  """
  path = os.fspath(path)
  local = _local_path(path)
  if local is None:
    return _write_remote(spec, path, save_variables)
  local = os.path.abspath(local)
  _write_local(spec, local, save_variables)
  return path if path.startswith("file://") else local


def _write_remote(spec, path: str, save_variables: Callable[[str], None]
                  ) -> str:
  """Writes the module locally, then copies it to ``path`` with
  ``tf.io.gfile``; ``tfhub_module.pb`` is copied last."""
  tf = runtime.tf()
  _check_remote_target(path)
  staging = tempfile.mkdtemp(prefix="hub_adapter_export_")
  try:
    local = os.path.join(staging, "module")
    _write_local(spec, local, save_variables)
    copied = []
    try:
      tf.io.gfile.makedirs(path)
      for name in _ENTRIES:
        source = os.path.join(local, name)
        if not os.path.exists(source):
          continue
        target = path.rstrip("/") + "/" + name
        _copy_tree(source, target)
        copied.append(target)
    except tf.errors.OpError as e:
      for target in reversed(copied):
        try:
          if tf.io.gfile.isdir(target):
            tf.io.gfile.rmtree(target)
          else:
            tf.io.gfile.remove(target)
        except tf.errors.OpError:
          pass
      raise errors.HandleError(errors.compose(
          f"Cannot write the module to {path!r}.",
          f"{type(e).__name__}: {e.message}. What was copied was removed.",
          "Check that the file system is available and writable.",
          {"path": path}), path=path) from e
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return path


def _copy_tree(source: str, target: str) -> None:
  tf = runtime.tf()
  if not os.path.isdir(source):
    tf.io.gfile.copy(source, target, overwrite=False)
    return
  tf.io.gfile.makedirs(target)
  for name in sorted(os.listdir(source)):
    _copy_tree(os.path.join(source, name), target + "/" + name)


def _check_remote_target(path: str) -> None:
  tf = runtime.tf()
  if not tf.io.gfile.exists(path):
    return
  if not tf.io.gfile.isdir(path):
    raise errors.HandleError(errors.compose(
        f"Cannot export the module to {path!r}: a file has that name.", "",
        "Choose a folder path that does not exist yet.", {"path": path}),
        path=path)
  taken = sorted({n.rstrip("/") for n in tf.io.gfile.listdir(path)}
                 & set(_ENTRIES))
  if taken:
    raise errors.HandleError(errors.compose(
        f"Cannot export the module to {path!r}: the folder already holds "
        f"{errors.choices(taken)}.",
        "Export writes a module's assets/, variables/, saved_model.pb and "
        "tfhub_module.pb into the folder, and never overwrites or mixes "
        "with an existing module.",
        "Choose a new (or empty) folder, or delete these entries first.",
        {"path": path}), path=path)


def _write_local(spec, path: str, save_variables: Callable[[str], None]
                 ) -> None:
  """Writes the whole folder into a temporary sibling, then renames it."""
  _check_target(path)
  parent, base = os.path.split(path)
  try:
    os.makedirs(parent, exist_ok=True)
  except OSError as e:
    raise _write_error(path, e) from e
  temp = os.path.join(parent, f".{base}.tmp-{uuid.uuid4().hex[:12]}")
  try:
    os.mkdir(temp)
    saved_model, sources = _disk_saved_model(spec)
    _copy_assets(spec, saved_model, sources, temp)
    save_variables(temp)
    _write_file(os.path.join(temp, SAVED_MODEL_FILENAME),
                saved_model.SerializeToString())
    _write_file(hub_protos.module_def_path(temp),
                hub_protos.serialize_module_def())
    _check_target(path)
    if os.path.isdir(path) and os.listdir(path):
      _move_entries(temp, path)
    else:
      os.replace(temp, path)  # Atomic; replaces only an empty folder.
  except BaseException as e:
    shutil.rmtree(temp, ignore_errors=True)
    if isinstance(e, OSError) and not isinstance(e, errors.HubAdapterError):
      raise _write_error(path, e) from e
    raise


# A module's entries, in the order they are moved into a non-empty target:
# tfhub_module.pb, which makes the folder a TF1 Hub module, comes last.
_ENTRIES = (ASSETS_DIR, VARIABLES_DIR, SAVED_MODEL_FILENAME,
            hub_protos.MODULE_DEF_FILENAME)


def _check_target(path: str) -> None:
  if os.path.isdir(path):
    taken = sorted(set(os.listdir(path)) & set(_ENTRIES))
    if taken:
      raise errors.HandleError(errors.compose(
          f"Cannot export the module to {path!r}: the folder already holds "
          f"{errors.choices(taken)}.",
          "Export writes a module's assets/, variables/, saved_model.pb and "
          "tfhub_module.pb into the folder, and never overwrites or mixes "
          "with an existing module.",
          "Choose a new (or empty) folder, or delete these entries first.",
          {"path": path}), path=path)
  if os.path.exists(path) and not os.path.isdir(path):
    raise errors.HandleError(errors.compose(
        f"Cannot export the module to {path!r}: a file has that name.", "",
        "Choose a folder path that does not exist yet.", {"path": path}),
        path=path)


def _move_entries(temp: str, path: str) -> None:
  """Moves a complete module from ``temp`` into the non-empty ``path``."""
  moved = []
  try:
    for name in _ENTRIES:
      source = os.path.join(temp, name)
      if not os.path.exists(source):
        continue
      target = os.path.join(path, name)
      if os.path.lexists(target):  # Appeared since _check_target.
        _check_target(path)
      os.rename(source, target)
      moved.append(target)
  except BaseException:
    for target in reversed(moved):
      if os.path.isdir(target):
        shutil.rmtree(target, ignore_errors=True)
      else:
        try:
          os.unlink(target)
        except OSError:
          pass
    raise
  os.rmdir(temp)


def _write_error(path: str, error: OSError) -> errors.HandleError:
  return errors.HandleError(errors.compose(
      f"Cannot write the module to {path!r}.",
      f"{type(error).__name__}: {error}. Nothing was left behind.",
      "Check that the parent folder is writable and has space.",
      {"path": path}), path=path)


def _write_file(path: str, data: bytes) -> None:
  with open(path, "wb") as f:
    f.write(data)
    f.flush()
    os.fsync(f.fileno())


def _disk_saved_model(spec):
  """Returns a copy of the spec's proto in on-disk form, and asset name ->
  source file for the constants that had to be converted."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved_model = saved_model_pb2.SavedModel()
  saved_model.CopyFrom(spec.saved_model)
  known = dict(getattr(spec, "asset_sources", None) or {})
  sources = assets.assets_to_disk_form(saved_model, known)
  return saved_model, sources


def _asset_names(saved_model) -> List[str]:
  tf = runtime.tf()
  from tensorflow.core.protobuf import meta_graph_pb2  # pylint: disable=g-import-not-at-top
  names = set()
  for meta_graph in saved_model.meta_graphs:
    collection = meta_graph.collection_def.get(hub_protos.ASSETS_KEY)
    if collection is None:
      continue
    for any_proto in collection.any_list.value:
      asset = meta_graph_pb2.AssetFileDef()
      any_proto.Unpack(asset)
      names.add(tf.compat.as_str_any(asset.filename))
  return sorted(names)


def _copy_assets(spec, saved_model, sources: Mapping[str, str],
                 target_dir: str) -> None:
  tf = runtime.tf()
  assets_dir = os.path.join(target_dir, ASSETS_DIR)
  os.makedirs(assets_dir)
  for name in _asset_names(saved_model):
    if (not name or name in (".", "..") or os.path.basename(name) != name
        or "/" in name or "\\" in name):
      raise errors.ModelFormatError(errors.compose(
          f"The asset name {name!r} is not a plain file name.",
          "Assets live directly in the module's assets/ folder.",
          "Do not export this spec; it may have been tampered with.",
          {"asset": name}))
    source = sources.get(name)
    if source is None:
      asset_path = getattr(spec, "asset_path", None)
      module_dir = getattr(spec, "module_dir", None)
      if asset_path is not None:
        source = asset_path(name)
      elif module_dir:
        source = os.path.join(module_dir, ASSETS_DIR, name)
    if source is None or not tf.io.gfile.exists(source):
      raise errors.ModelFormatError(errors.compose(
          f"The asset file {name!r} cannot be found for export.",
          f"It was expected at {source!r}." if source else
          "The spec names no source for it.",
          "Keep asset files in place until the module is exported.",
          {"asset": name}))
    tf.io.gfile.copy(source, os.path.join(assets_dir, name), overwrite=False)


__all__ = ["export_spec", "export_module"]
