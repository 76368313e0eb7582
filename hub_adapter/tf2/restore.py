"""Loads a SavedModel with its variables read in parallel, early.

Why this is hand-written: ``tf.saved_model.load`` first rebuilds the object
graph and its functions (Python-bound work, one core), and only then restores
the variables, reading them one after another in a single ``RestoreV2`` op.
For models with many tensors the two halves cost about the same, and the
second core idles throughout. TensorFlow has no option to overlap or split
them, so this module does it with public pieces of the same machinery:

1. Before anything is built, it reads the checkpoint's object graph (the
   ``_CHECKPOINTABLE_OBJECT_GRAPH`` entry of ``variables/``), walks it from
   the root as TensorFlow's restore does, and plans a read for every object
   whose only checkpointed value is a whole, unsliced ``VARIABLE_VALUE``.
2. It starts those reads at once: ``RestoreV2`` ops in a thread pool, a few
   tensors per op, on the io device (TensorFlow runs kernels without the
   GIL, so the reads proceed while Python rebuilds the model).
3. Meanwhile it rebuilds the model with ``tf.saved_model.load(...,
   LoadOptions(experimental_skip_checkpoint=True))``.
4. It matches the loaded objects to checkpoint nodes by the same walk
   (``_trackable_children`` and ``_lookup_dependency``, the calls
   TensorFlow's restore makes; both are stable from TF 2.15 to 2.21) and
   assigns each read tensor to its variable (to every replica of a
   ``MirroredVariable``).

A TF1 SavedModel (a TF1 Hub module loaded in TF2: ``load_v1_in_v2``) is
restored by running its saver's restore op. When that op only assigns
``RestoreV2`` outputs to resource variables (which ``load_v1_in_v2`` lifts
out of its graph), the same reads (names, slices, dtypes) are made early,
in threads, and assigned to the lifted variables of the same names.

Anything it cannot map one to one with certainty goes through TensorFlow's
own restore, by loading the whole model with plain ``tf.saved_model.load``:
checkpointed values that are not a plain variable's (lookup tables, custom
saveables, registered savers, optimizer slots), sliced or partitioned
tensors of TF2 SavedModels, distributed variables other than
``MirroredVariable`` under ``MirroredStrategy``, a dtype or shape that
differs, a loaded variable left without a value, a TF1 saver that does
more than assign resource variables (ref variables, tables),
``allow_partial_checkpoint``, and any error (so a corrupt checkpoint
fails exactly as it does in TensorFlow). Each fallback is logged with
``absl.logging`` at INFO. Graph mode is left to TensorFlow, which there
makes one restore op per variable that a session already runs in parallel.

Opting out: ``HUB_ADAPTER_PARALLEL_RESTORE=0`` in the environment, or
``hub_adapter.load(..., restore="tensorflow")`` (which wins over the
environment). ``HUB_ADAPTER_RESTORE_THREADS`` sets the number of read
threads (default: the usable CPUs, from 2 to 4).
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import os
import threading
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from absl import logging
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2
from tensorflow.python.distribute import values as distribute_values
from tensorflow.python.ops import resource_variable_ops

from hub_adapter import errors
from hub_adapter import reader
from hub_adapter.tf1 import hub_protos

PARALLEL = "parallel"
"""Restore method: reads in parallel threads, overlapped with the rebuild."""
TENSORFLOW = "tensorflow"
"""Restore method: plain ``tf.saved_model.load``, TensorFlow's own restore."""
METHODS = (PARALLEL, TENSORFLOW)

ENV_PARALLEL = "HUB_ADAPTER_PARALLEL_RESTORE"
ENV_THREADS = "HUB_ADAPTER_RESTORE_THREADS"

_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VARIABLE_VALUE = "VARIABLE_VALUE"
_OFF = frozenset({"0", "false", "no", "off", TENSORFLOW})
_ON = frozenset({"", "1", "true", "yes", "on", PARALLEL})
# Reads per thread: more, smaller ops balance the threads and let reads end
# while the rebuild still runs; each op also opens the index, so not too
# many.
_CHUNKS_PER_THREAD = 4
_MIN_CHUNK_BYTES = 4 << 20
# The loader makes variables of exactly these types outside a strategy.
_PLAIN_TYPES = (resource_variable_ops.UninitializedVariable,
                resource_variable_ops.ResourceVariable)

_method: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "hub_adapter_restore_method", default=None)


class _Fallback(Exception):
  """Why the parallel restore hands the model to TensorFlow's own load."""


@dataclasses.dataclass(frozen=True)
class Report:
  """How the last :func:`load` in a thread restored its variables.

  Attributes:
    method: ``"parallel"`` (TF2 SavedModel: reads in threads, assigned
      here), ``"parallel_tf1"`` (TF1 SavedModel: the reads of its saver,
      in threads, assigned to its lifted variables) or ``"tensorflow"``
      (``tf.saved_model.load``).
    reason: Why TensorFlow's restore was used, or "" when it was not.
    tensors: How many tensors were read in threads.
    bytes: How many bytes those tensors take in the checkpoint.
    threads: How many threads read them (0 on TensorFlow's path).
  """
  method: str
  reason: str = ""
  tensors: int = 0
  bytes: int = 0
  threads: int = 0


_last = threading.local()


def last_report() -> Optional[Report]:
  """How the last :func:`load` in this thread restored.

  Returns:
    Its :class:`Report`, or None before the first load in the thread.
  """
  return getattr(_last, "report", None)


def check_method(method: Optional[str]) -> Optional[str]:
  """Validates a ``restore=`` value.

  Args:
    method: ``"parallel"``, ``"tensorflow"`` or None (the environment
      decides).

  Returns:
    ``method``.

  Raises:
    ArgumentError: any other value.
  """
  if method is None or method in METHODS:
    return method
  raise errors.ArgumentError(errors.compose(
      f"Unknown restore method {method!r}.",
      f"restore= takes {errors.choices(METHODS)} or None.",
      'Pass restore="tensorflow" to restore exactly as tf.saved_model.load '
      "does, or leave it None."), restore=method)


@contextlib.contextmanager
def using(method: Optional[str]) -> Iterator[None]:
  """Makes ``method`` the restore method of loads in this context.

  Args:
    method: A value :func:`check_method` accepts; None keeps the default.

  Yields:
    Nothing.

  Raises:
    ArgumentError: ``method`` is not a known method.
  """
  token = _method.set(check_method(method))
  try:
    yield
  finally:
    _method.reset(token)


def chosen_method() -> str:
  """The restore method in force: ``restore=``, else the environment.

  ``HUB_ADAPTER_PARALLEL_RESTORE`` set to 0/false/no/off/tensorflow picks
  TensorFlow's restore; unset or 1/true/yes/on/parallel the parallel one.

  Returns:
    ``"parallel"`` or ``"tensorflow"``.

  Raises:
    ArgumentError: the environment variable holds another value.
  """
  method = _method.get()
  if method is not None:
    return method
  value = os.environ.get(ENV_PARALLEL, "").strip().lower()
  if value in _OFF:
    return TENSORFLOW
  if value in _ON:
    return PARALLEL
  raise errors.ArgumentError(errors.compose(
      f"{ENV_PARALLEL}={value!r} is not understood.",
      "It takes 0 (TensorFlow's own restore) or 1 (parallel restore).",
      f"Set {ENV_PARALLEL} to 0 or 1, or unset it."))


def thread_count() -> int:
  """How many threads read variables (``HUB_ADAPTER_RESTORE_THREADS``).

  Returns:
    The variable's value, else the usable CPUs bounded to 2..4 (two keep
    one core reading while the rebuild holds the other).

  Raises:
    ArgumentError: the environment variable is not a positive integer.
  """
  value = os.environ.get(ENV_THREADS, "").strip()
  if value:
    try:
      count = int(value)
    except ValueError:
      count = 0
    if count < 1:
      raise errors.ArgumentError(errors.compose(
          f"{ENV_THREADS}={value!r} is not a positive integer.",
          "It is the number of threads that read variables.",
          f"Set {ENV_THREADS} to 1 or more, or unset it."))
    return count
  return min(4, max(2, _usable_cpus()))


@dataclasses.dataclass(frozen=True)
class _Read:
  """One tensor to read from the checkpoint.

  TF2: a checkpoint node's ``VARIABLE_VALUE`` (``target`` is the node id).
  TF1: one output of the saver's ``RestoreV2`` (``target`` is the name of
  the variable the saver assigns it to).
  """
  target: Any
  path: str
  key: str
  slice_spec: str
  dtype: Any
  shape: Optional[Tuple[int, ...]]
  size: int
  position: Tuple[int, int]


@dataclasses.dataclass
class _Plan:
  """What to read, and what to check the loaded model against.

  Attributes:
    prefix: The checkpoint prefix (``variables/variables``).
    device: Where the reads run.
    reads: The tensors to read.
    graph: TF2: the checkpoint's ``TrackableObjectGraph``.
    saved_variables: TF2: how many variables the SavedModel holds.
    restore_op: TF1: the name of the saver's restore op.
  """
  prefix: str
  device: str
  reads: List[_Read]
  graph: Any = None
  saved_variables: int = 0
  restore_op: Optional[str] = None


def _load_with_tensorflow(export_dir: str, tags: Any, options: Any,
                          reason: str) -> Any:
  _last.report = Report(TENSORFLOW, reason)
  kwargs = {"options": options} if options is not None else {}
  return tf.saved_model.load(export_dir, tags=tags, **kwargs)


def _fall_back(export_dir: str, tags: Any, options: Any, reason: str) -> Any:
  logging.info("hub_adapter: restoring %s with TensorFlow's own restore: %s",
               export_dir, reason)
  return _load_with_tensorflow(export_dir, tags, options, reason)


def load(export_dir: str, tags: Any = None, options: Any = None) -> Any:
  """``tf.saved_model.load(export_dir, tags, options)``, restoring faster.

  With the parallel method (the default) in eager mode, the variables are
  read in threads while the model is rebuilt (see the module docstring); a
  TF1 SavedModel (``load_v1_in_v2``) gets the same early, parallel reads,
  fed to its own saver's restore op. Otherwise, and whenever a model is not
  certainly served right, this is plain ``tf.saved_model.load``.

  Args:
    export_dir: The SavedModel folder.
    tags: The tag set to load, or None.
    options: ``tf.saved_model.LoadOptions`` or None.

  Returns:
    The loaded object, with every variable equal to what
    ``tf.saved_model.load`` gives.

  Raises:
    Whatever ``tf.saved_model.load`` raises for the folder (a failure on the
    parallel path is retried there, so errors are TensorFlow's own);
    ArgumentError for a bad ``HUB_ADAPTER_*`` setting.
  """
  if chosen_method() == TENSORFLOW:
    return _load_with_tensorflow(export_dir, tags, options, "asked for")
  threads = thread_count()
  if not tf.executing_eagerly():
    # TensorFlow makes one restore op per variable, and a session runs them
    # in parallel.
    return _load_with_tensorflow(export_dir, tags, options, "graph mode")
  if options is not None and (options.experimental_skip_checkpoint or
                              options.allow_partial_checkpoint):
    return _load_with_tensorflow(export_dir, tags, options,
                                 "LoadOptions asks for TensorFlow's rules")
  try:
    plan = _plan(export_dir, tags, options)
  except _Fallback as e:
    return _fall_back(export_dir, tags, options, str(e))
  except Exception as e:  # pylint: disable=broad-except
    return _fall_back(export_dir, tags, options, _describe(e))
  if plan is None:
    return _load_with_tensorflow(export_dir, tags, options,
                                 "nothing to read ahead")
  chunks = _chunks(plan.reads, threads)
  readers = _Readers(plan, chunks, threads)
  try:
    futures = readers.futures
    try:
      root = tf.saved_model.load(export_dir, tags=tags,
                                 options=_skip_options(options))
      readers.release()
      if plan.restore_op is None:
        _assign(root, plan, chunks, futures)
      else:
        _assign_tf1(root, plan, chunks, futures)
    except _Fallback as e:
      reason = str(e)
    except Exception as e:  # pylint: disable=broad-except
      # TensorFlow's own load reports the problem with its own error.
      reason = _describe(e)
    else:
      _last.report = Report(
          PARALLEL if plan.restore_op is None else "parallel_tf1",
          tensors=len(plan.reads), bytes=sum(r.size for r in plan.reads),
          threads=threads)
      return root
  finally:
    readers.stop()
  return _fall_back(export_dir, tags, options, reason)


def _describe(error: Exception) -> str:
  return f"{type(error).__name__}: {str(error).strip()[:300]}"


def _skip_options(options: Any) -> Any:
  options = options or tf.saved_model.LoadOptions()
  return tf.saved_model.LoadOptions(
      allow_partial_checkpoint=options.allow_partial_checkpoint,
      experimental_io_device=options.experimental_io_device,
      experimental_skip_checkpoint=True,
      experimental_variable_policy=options.experimental_variable_policy,
      experimental_load_function_aliases=(
          options.experimental_load_function_aliases))


def _plan(export_dir: str, tags: Any, options: Any) -> Optional[_Plan]:
  """Plans the reads; None when TensorFlow's load is the right path anyway.

  Raises:
    _Fallback: the checkpoint holds something this module does not restore.
  """
  saved_model = reader.read_saved_model(export_dir)
  index = reader.read_bundle_index(export_dir)
  if index is None or not index.entries:
    return None
  prefix = os.path.join(export_dir, reader.VARIABLES_PREFIX)
  device = (options.experimental_io_device if options is not None and
            options.experimental_io_device else "/cpu:0")
  entries = {entry.key: entry for entry in index.entries}
  if (len(saved_model.meta_graphs) == 1 and
      saved_model.meta_graphs[0].HasField("object_graph_def")):
    return _plan_tf2(saved_model, entries, prefix, device)
  return _plan_tf1(saved_model, tags, entries, prefix, device)


def _plan_tf2(saved_model: Any, entries: Dict[str, Any], prefix: str,
              device: str) -> _Plan:
  """Plans a TF2 SavedModel's reads from its checkpoint's object graph."""
  if _GRAPH_KEY not in entries:
    raise _Fallback("the checkpoint has no object graph")
  saved_graph = saved_model.meta_graphs[0].object_graph_def
  saved_variables = sum(1 for node in saved_graph.nodes
                        if node.WhichOneof("kind") == "variable")
  with tf.device(device):
    data = tf.raw_ops.RestoreV2(prefix=prefix, tensor_names=[_GRAPH_KEY],
                                shape_and_slices=[""],
                                dtypes=[tf.string])[0].numpy()
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  graph.ParseFromString(data)
  reads = []
  for node_id, path in _walk_paths(graph):
    node = graph.nodes[node_id]
    if node.HasField("registered_saver") and node.registered_saver.name:
      raise _Fallback(f"{path} uses the registered saver "
                      f"{node.registered_saver.name!r}")
    if node.slot_variables:
      raise _Fallback(f"{path} has optimizer slot variables")
    if not node.attributes:
      continue
    names = [attribute.name for attribute in node.attributes]
    if names != [_VARIABLE_VALUE]:
      raise _Fallback(f"{path} has checkpointed values that are not a "
                      f"variable's: {names}")
    key = node.attributes[0].checkpoint_key
    entry = entries.get(key)
    if entry is None:
      raise _Fallback(f"the checkpoint key {key!r} is not in the index")
    if entry.sliced:
      raise _Fallback(f"{key!r} is saved in slices (a partitioned variable)")
    reads.append(_Read(node_id, path, key, "",
                       tf.dtypes.as_dtype(entry.dtype), entry.shape,
                       entry.size, (entry.shard_id, entry.offset)))
  return _Plan(prefix, device, reads, graph=graph,
               saved_variables=saved_variables)


def _plan_tf1(saved_model: Any, tags: Any, entries: Dict[str, Any],
              prefix: str, device: str) -> Optional[_Plan]:
  """Plans a TF1 SavedModel's reads from its saver's restore op.

  ``load_v1_in_v2`` restores by running the saver's restore op in the
  imported graph: ``RestoreV2`` ops whose outputs go through ``Identity``
  to an ``AssignVariableOp`` per resource variable. Those exact reads (same
  names, slices and dtypes) are planned here, to be assigned to the lifted
  variables of the same names.

  Returns:
    The plan, or None when the meta graph has no saver (nothing to restore)
    or cannot be picked (TensorFlow then says why).

  Raises:
    _Fallback: the restore op does anything else (ref variables, tables,
      other saveables).
  """
  metas = saved_model.meta_graphs
  if tags is None:
    meta = metas[0] if len(metas) == 1 else None
  else:
    wanted = set(tf.nest.flatten(tags))
    meta = next((m for m in metas if set(m.meta_info_def.tags) == wanted),
                None)
  if meta is None:
    return None
  if not meta.HasField("saver_def"):
    return _plan_default_saver(meta, entries, prefix, device)
  saver = meta.saver_def
  nodes = {node.name: node for node in meta.graph_def.node}
  filename = saver.filename_tensor_name.split(":")[0]
  pending = [saver.restore_op_name]
  seen = set(pending)
  assigns = []
  while pending:
    node = nodes.get(pending.pop())
    if node is None:
      raise _Fallback("the saver's restore op is not in the graph")
    if node.op == "AssignVariableOp":
      assigns.append(node)
      continue
    if node.op != "NoOp":
      raise _Fallback(f"the saver's restore op runs {node.op} "
                      f"{node.name!r}, not only resource variable "
                      "assignments")
    for name in node.input:
      name = name.lstrip("^").split(":")[0]
      if name not in seen:
        seen.add(name)
        pending.append(name)
  sources: Dict[Tuple[str, int], str] = {}
  for assign in assigns:
    variable = _input_node(nodes, assign, 0, "VarHandleOp")
    value = _input_node(nodes, assign, 1, "Identity")
    restore, _, index = value.input[0].partition(":")
    if len(value.input) != 1 or nodes.get(restore) is None or (
        nodes[restore].op != "RestoreV2"):
      raise _Fallback(f"{assign.name!r} does not assign a RestoreV2 output")
    output = (restore, int(index or 0))
    if output in sources or variable.name in sources.values():
      raise _Fallback(f"{variable.name!r} or {value.input[0]!r} is used "
                      "twice in the restore")
    sources[output] = variable.name
  reads = []
  for restore in sorted({name for name, _ in sources}):
    node = nodes[restore]
    if len(node.input) != 3 or node.input[0].split(":")[0] != filename:
      raise _Fallback(f"{restore!r} does not read the saver's file")
    names = _constant(nodes, node.input[1])
    slices = _constant(nodes, node.input[2])
    dtypes = [tf.dtypes.as_dtype(t) for t in node.attr["dtypes"].list.type]
    if not len(names) == len(slices) == len(dtypes):
      raise _Fallback(f"{restore!r} has inconsistent inputs")
    for k, (key, spec, dtype) in enumerate(zip(names, slices, dtypes)):
      variable = sources.get((restore, k))
      entry = entries.get(key)
      if variable is None or entry is None:
        raise _Fallback(f"output {k} of {restore!r} ({key!r}) is not a "
                        "checkpointed variable's value")
      reads.append(_Read(variable, variable, key, spec, dtype, entry.shape,
                         entry.size, (entry.shard_id, entry.offset)))
  if not reads:
    return None
  return _Plan(prefix, device, reads, restore_op=saver.restore_op_name)


def _plan_default_saver(meta: Any, entries: Dict[str, Any], prefix: str,
                        device: str) -> Optional[_Plan]:
  """Plans the reads of the saver ``load_v1_in_v2`` makes for a meta graph
  without one (TF1 Hub modules are exported so).

  TensorFlow then builds a default ``tf.compat.v1.train.Saver`` over the
  graph's global variables: each is restored from the key of its op name
  (its partition's full name and slice for partitioned variables).

  Raises:
    _Fallback: the graph has ref variables or other saveable objects.
  """
  from tensorflow.core.framework import variable_pb2  # pylint: disable=g-import-not-at-top
  if any(meta.collection_def[key].bytes_list.value or
         meta.collection_def[key].node_list.value
         for key in ("saveable_objects",) if key in meta.collection_def):
    raise _Fallback("the graph has saveable objects other than variables")
  collection = meta.collection_def.get(hub_protos.GLOBAL_VARIABLES)
  if collection is None or not collection.bytes_list.value:
    return None
  nodes = {node.name: node for node in meta.graph_def.node}
  reads, keys = [], set()
  for data in collection.bytes_list.value:
    variable = variable_pb2.VariableDef()
    variable.ParseFromString(data)
    name = variable.variable_name.split(":")[0]
    node = nodes.get(name)
    if not variable.is_resource or node is None or node.op != "VarHandleOp":
      raise _Fallback(f"{name!r} is not a resource variable (TF1 ref "
                      "variables stay in the loaded graph)")
    spec = ""
    key = name
    if variable.save_slice_info_def.full_name:
      info = tf.Variable.SaveSliceInfo(
          save_slice_info_def=variable.save_slice_info_def)
      key, spec = info.full_name, info.spec
    entry = entries.get(key)
    if entry is None or (key, spec) in keys:
      raise _Fallback(f"the checkpoint has no single entry {key!r} for "
                      f"{name!r}")
    keys.add((key, spec))
    reads.append(_Read(name, name, key, spec,
                       tf.dtypes.as_dtype(node.attr["dtype"].type),
                       entry.shape, entry.size,
                       (entry.shard_id, entry.offset)))
  return _Plan(prefix, device, reads, restore_op="(default saver)")


def _input_node(nodes: Dict[str, Any], node: Any, index: int,
                op: str) -> Any:
  """The node feeding input ``index`` of ``node``, which must be ``op``."""
  name = node.input[index].split(":")[0] if len(node.input) > index else ""
  found = nodes.get(name)
  if found is None or found.op != op:
    raise _Fallback(f"input {index} of {node.name!r} is not a {op}")
  return found


def _constant(nodes: Dict[str, Any], name: str) -> List[str]:
  """The strings of a ``Const`` node of a graph def."""
  node = nodes.get(name.split(":")[0])
  if node is None or node.op != "Const":
    raise _Fallback(f"{name!r} is not a constant")
  values = tf.make_ndarray(node.attr["value"].tensor).reshape(-1)
  return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _walk_paths(graph: Any) -> Iterator[Tuple[int, str]]:
  """Checkpoint nodes reachable from the root, breadth first, with paths."""
  seen = {0}
  queue = collections.deque([(0, "root")])
  while queue:
    node_id, path = queue.popleft()
    yield node_id, path
    for child in graph.nodes[node_id].children:
      if child.node_id not in seen and 0 <= child.node_id < len(graph.nodes):
        seen.add(child.node_id)
        queue.append((child.node_id, f"{path}.{child.local_name}"))


def _chunks(reads: Sequence[_Read], threads: int) -> List[List[_Read]]:
  """Groups reads in file order into about ``threads * 4`` similar ops."""
  ordered = sorted(reads, key=lambda r: r.position)
  total = sum(r.size for r in ordered)
  target = max(total // (threads * _CHUNKS_PER_THREAD), _MIN_CHUNK_BYTES)
  chunks: List[List[_Read]] = []
  current: List[_Read] = []
  size = 0
  for read in ordered:
    current.append(read)
    size += read.size
    if size >= target:
      chunks.append(current)
      current, size = [], 0
  if current:
    chunks.append(current)
  return chunks


def _usable_cpus() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 2


class _Readers:
  """Threads that read the planned chunks, in file order, into futures.

  While the model is rebuilt, the rebuild (one Python thread) keeps a core
  to itself: only ``cpus - 1`` readers start at once, the others when
  :meth:`release` says the rebuild is over, so the reads never slow the
  critical path down.
  """

  def __init__(self, plan: _Plan, chunks: Sequence[Sequence[_Read]],
               threads: int):
    self._plan = plan
    self._work = collections.deque(enumerate(chunks))
    self.futures = [concurrent.futures.Future() for _ in chunks]
    self._go = threading.Event()
    self._stopped = False
    early = max(1, min(threads, _usable_cpus() - 1))
    for i in range(threads):
      threading.Thread(target=self._run, args=(i < early,), daemon=True,
                       name=f"hub_adapter_restore_{i}").start()

  def release(self) -> None:
    """Lets every reader work (the rebuild is over)."""
    self._go.set()

  def stop(self) -> None:
    """Cancels the reads that have not started; lets the threads end."""
    self._stopped = True
    for future in self.futures:
      future.cancel()
    self._go.set()

  def _run(self, early: bool) -> None:
    if not early:
      self._go.wait()
    while not self._stopped:
      try:
        index, chunk = self._work.popleft()
      except IndexError:
        return
      future = self.futures[index]
      if not future.set_running_or_notify_cancel():
        continue
      try:
        future.set_result(_read(self._plan.prefix, self._plan.device, chunk))
      except BaseException as e:  # pylint: disable=broad-except
        future.set_exception(e)


def _read(prefix: str, device: str, chunk: Sequence[_Read]) -> List[Any]:
  with tf.device(device):
    return tf.raw_ops.RestoreV2(
        prefix=prefix, tensor_names=[r.key for r in chunk],
        shape_and_slices=[r.slice_spec for r in chunk],
        dtypes=[r.dtype for r in chunk])


def _match(root: Any, graph: Any) -> Dict[int, Any]:
  """Checkpoint node id -> loaded object, found as TensorFlow's restore does.

  Raises:
    _Fallback: an object with checkpointed values has no loaded
      counterpart, or one loaded object answers to two checkpoint nodes.
  """
  # pylint: disable=protected-access
  bound = {0: root}
  owner = {id(root): 0}
  queue = collections.deque([(0, root)])
  while queue:
    node_id, obj = queue.popleft()
    children = obj._trackable_children()
    for child in graph.nodes[node_id].children:
      if child.node_id in bound:
        continue
      found = obj._lookup_dependency(child.local_name, children)
      if found is None:
        if _has_values(graph, child.node_id):
          raise _Fallback(f"the loaded model has no object for the "
                          f"checkpointed {child.local_name!r}")
        continue
      if owner.setdefault(id(found), child.node_id) != child.node_id:
        raise _Fallback("one loaded object matches two checkpoint objects")
      bound[child.node_id] = found
      queue.append((child.node_id, found))
  return bound


def _has_values(graph: Any, node_id: int) -> bool:
  node = graph.nodes[node_id]
  if node.HasField("has_checkpoint_values"):
    return node.has_checkpoint_values.value
  return bool(node.children or node.attributes or node.slot_variables or
              node.HasField("registered_saver"))


def _components(variable: Any) -> List[Tuple[Any, Optional[str]]]:
  """The plain variables to assign for a loaded variable, with the device
  to assign each on (None: where the variable is).

  Raises:
    _Fallback: the variable is of a kind this module does not restore.
  """
  if type(variable) in _PLAIN_TYPES:
    return [(variable, None)]
  if (type(variable) is distribute_values.MirroredVariable and
      isinstance(tf.distribute.get_strategy(), tf.distribute.MirroredStrategy)
      and tf.distribute.in_cross_replica_context()):
    parts = list(tf.distribute.get_strategy().experimental_local_results(
        variable))
    if parts and all(type(p) in _PLAIN_TYPES for p in parts):
      return [(part, part.device) for part in parts]
  raise _Fallback(f"{getattr(variable, 'name', variable)!r} is a "
                  f"{type(variable).__name__}, not a plain resource variable")


def _assign(root: Any, plan: _Plan, chunks: Sequence[Sequence[_Read]],
            futures: Sequence[Any]) -> None:
  """Matches the loaded variables and assigns the read tensors to them.

  Raises:
    _Fallback: a variable cannot be matched with certainty.
    tf.errors.OpError: a read failed.
  """
  bound = _match(root, plan.graph)
  targets: Dict[int, List[Tuple[Any, Optional[str]]]] = {}
  for read in plan.reads:
    variable = bound.get(read.target)
    if variable is None:
      raise _Fallback(f"the loaded model has no object for {read.path}")
    if not isinstance(variable, tf.Variable):
      raise _Fallback(f"{read.path} is a {type(variable).__name__}, not a "
                      "variable")
    if variable.dtype != read.dtype or (
        read.shape is None or
        not variable.shape.is_compatible_with(read.shape)):
      raise _Fallback(f"{read.path} is {variable.dtype.name}{variable.shape} "
                      f"in the model but {read.dtype.name}{read.shape} in "
                      "the checkpoint")
    targets[read.target] = _components(variable)
  if len(targets) != plan.saved_variables:
    raise _Fallback(f"{plan.saved_variables} variables were saved but "
                    f"{len(targets)} are checkpointed plainly")
  for chunk, future in zip(chunks, futures):
    tensors = future.result()
    for read, tensor in zip(chunk, tensors):
      for part, device in targets[read.target]:
        if device is None:
          part.assign(tensor, read_value=False)
        else:
          with tf.device(device):
            part.assign(tensor, read_value=False)
    del tensors


def _assign_tf1(root: Any, plan: _Plan, chunks: Sequence[Sequence[_Read]],
                futures: Sequence[Any]) -> None:
  """Assigns a TF1 SavedModel's read tensors to its lifted variables.

  Each variable the saver restores must be among ``root.variables`` under
  its graph name, as a plain resource variable; the assignment is the one
  the saver's ``AssignVariableOp`` makes (shape checked, value shared).

  Raises:
    _Fallback: a restored variable is not one of those.
    tf.errors.OpError: a read failed.
  """
  by_name: Dict[str, Any] = {}
  for variable in getattr(root, "variables", None) or ():
    name = variable.name.split(":")[0]
    if by_name.setdefault(name, variable) is not variable or (
        type(variable) not in _PLAIN_TYPES):
      raise _Fallback(f"the loaded variable {variable.name!r} is a "
                      f"{type(variable).__name__} or shares its name")
  targets = {}
  for read in plan.reads:
    variable = by_name.get(read.target)
    if variable is None or variable.dtype != read.dtype:
      raise _Fallback(f"the saver restores {read.target!r}, which the "
                      "loaded model does not hold as a plain variable of "
                      f"dtype {read.dtype.name}")
    targets[read.target] = variable
  for chunk, future in zip(chunks, futures):
    tensors = future.result()
    for read, tensor in zip(chunk, tensors):
      targets[read.target].assign(tensor, read_value=False)
    del tensors
