"""``hub-adapter matrix``: run every cell of the support table, live.

The parent process builds nothing itself. It starts one worker process per
mode (TF1 compat mode first, because only it can create the tiny TF1 Hub
module the TF2 worker then loads), collects one result per cell as JSON, and
prints the table next to what the official table says.

A cell *agrees* when an officially supported cell worked and produced the
expected values, or when an officially unsupported cell raised
``UnsupportedOperationError``. A cell whose backend cannot be imported yet is
*pending*.

Some officially unsupported cells work in part (the support table's
``Unsupported.works_when``, e.g. creating the TF1 Hub format from a TF2
program the way tensorflow_hub 0.15 did): the matrix then also runs what
that names, checks its values, and reports it next to the refusal; such a
cell agrees only if both the refusal and the partial success are observed.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import traceback
from typing import Callable, List, Optional

from hub_adapter import errors
from hub_adapter import support
from hub_adapter.support import Format, Mode, Operation

WORKED = "worked"
REFUSED = "refused"
FAILED = "failed"
PENDING = "pending"
_RESULT_PREFIX = "HUB_ADAPTER_MATRIX_RESULT "


@dataclasses.dataclass
class CellResult:
  """What happened when one cell was run.

  Attributes:
    format: The model format's value.
    operation: The operation's value.
    mode: The mode's value.
    outcome: WORKED, REFUSED (typed UnsupportedOperationError), FAILED or
      PENDING.
    detail: What was run, or the error's first line.
    works_when: For an officially unsupported cell that works in part (the
      table's ``works_when``): "worked: ..." with what was checked, or
      "failed: ..." with the error; "" otherwise.
  """
  format: str
  operation: str
  mode: str
  outcome: str
  detail: str
  works_when: str = ""

  @property
  def key(self):
    return Format(self.format), Operation(self.operation), Mode(self.mode)

  @property
  def official(self) -> bool:
    return support.OFFICIAL[self.key]

  @property
  def verdict(self) -> str:
    if self.outcome == PENDING:
      return "pending"
    if self.official and self.outcome == WORKED:
      return "agree"
    if not self.official and self.outcome == REFUSED:
      cell = support.TABLE[self.key]
      if getattr(cell, "works_when", "") and not self.works_when.startswith(
          WORKED):
        return "DISAGREE"
      return "agree"
    return "DISAGREE"


# --- probes, run inside a worker -------------------------------------------

def _close(actual, expected=None) -> None:
  import numpy as np  # pylint: disable=g-import-not-at-top
  from hub_adapter import tiny_models  # pylint: disable=g-import-not-at-top
  expected = tiny_models.EXPECTED if expected is None else expected
  np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-5,
                             atol=1e-5)


def _single_output(outputs):
  if isinstance(outputs, dict):
    return outputs.get("default", next(iter(outputs.values())))
  return outputs


def _model_dir(root: str, fmt: Format, mode: Mode) -> str:
  """The tiny model a load or fine-tune cell uses: the TF1 Hub module comes
  from the TF1 compat worker (the only mode that can create it); the TF2
  SavedModel from the create cell of the same mode."""
  from hub_adapter import tiny_models  # pylint: disable=g-import-not-at-top
  if fmt is Format.TF1_HUB:
    return os.path.join(root, tiny_models.TF1_MODULE)
  return tiny_models.tf2_model_dir(root, mode.value)


def _probe_create(fmt: Format, mode: Mode, root: str) -> str:
  from hub_adapter import tiny_models  # pylint: disable=g-import-not-at-top
  if fmt is Format.TF1_HUB:
    if mode is Mode.TF2:
      # What needs graph state outside any graph stays refused.
      from hub_adapter.tf1 import creation  # pylint: disable=g-import-not-at-top
      from hub_adapter.tf1 import module as module_lib  # pylint: disable=g-import-not-at-top
      module_lib.Module(creation.create_module_spec(
          tiny_models.tiny_tf1_module_fn))
      return "Module(spec) outside any graph returned (expected a refusal)"
    tiny_models.make_tf1_module(os.path.join(root, tiny_models.TF1_MODULE))
    _probe_load_graph(fmt, root)
    return ("create_module_spec + Module.export; reloaded with "
            "hub_adapter.load, values checked")
  tiny_models.make_tf2_saved_model(tiny_models.tf2_model_dir(root, mode.value))
  (_probe_load_tf2 if mode is Mode.TF2 else _probe_load_graph)(fmt, root)
  return ("hub_adapter.save (tf.saved_model.save); reloaded with "
          "hub_adapter.load, values checked")


def _probe_create_tf1_in_a_graph(root: str) -> str:
  """The 0.15 way from an eager program: build and export in a graph block,
  then load the module in TF2 and check its values."""
  from hub_adapter import tiny_models  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.executing_eagerly():
    raise AssertionError("expected an eager (TF2) process")
  path = os.path.join(root, tiny_models.TF1_MODULE + "_from_tf2")
  tiny_models.make_tf1_module(path)
  model = _eager_load(path, trainable=False)
  _close(_single_output(model(tf.constant(tiny_models.INPUT))))
  return ("create_module_spec, then Module + export in a tf.Graph block; "
          "loaded with hub_adapter.load in TF2, values checked")


# Probes for what an officially unsupported cell's works_when names.
_WORKS_WHEN_PROBES = {
    (Format.TF1_HUB, Operation.CREATE, Mode.TF2): _probe_create_tf1_in_a_graph,
}


def _eager_load(path: str, trainable: bool):
  import hub_adapter  # pylint: disable=g-import-not-at-top
  return hub_adapter.load(path, trainable=trainable)


def _probe_load_tf2(fmt: Format, root: str) -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hub_adapter import tiny_models  # pylint: disable=g-import-not-at-top
  model = _eager_load(_model_dir(root, fmt, Mode.TF2), trainable=False)
  _close(_single_output(model(tf.constant(tiny_models.INPUT))))
  return "hub_adapter.load(handle)(x) == expected"


def _probe_load_graph(fmt: Format, root: str) -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import hub_adapter  # pylint: disable=g-import-not-at-top
  from hub_adapter import tiny_models  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    model = hub_adapter.load(_model_dir(root, fmt, Mode.TF1_COMPAT))
    y = _single_output(model(tf.constant(tiny_models.INPUT)))
    with tf.compat.v1.Session() as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
      _close(session.run(y))
  return "hub_adapter.load(handle)(x) in a Session == expected"


def _probe_finetune_tf2(fmt: Format, root: str) -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hub_adapter import tiny_models  # pylint: disable=g-import-not-at-top
  path = _model_dir(root, fmt, Mode.TF2)
  model = _eager_load(path, trainable=True)
  x = tf.constant(tiny_models.INPUT)

  def loss_fn():
    y = _single_output(model(x, training=True))
    return tf.reduce_mean(tf.square(y - tiny_models.TARGET))

  losses = []
  optimizer_vars = list(model.trainable_variables)
  if not optimizer_vars:
    raise AssertionError("trainable=True exposed no trainable variables")
  for _ in range(3):
    with tf.GradientTape() as tape:
      loss = loss_fn()
    grads = tape.gradient(loss, optimizer_vars)
    for var, grad in zip(optimizer_vars, grads):
      var.assign_sub(0.05 * grad)
    losses.append(float(loss))
  if not losses[-1] < losses[0]:
    raise AssertionError(f"loss did not go down: {losses}")
  keras_losses = _keras_fit(path)
  return (f"GradientTape loss {losses[0]:.3f} -> {losses[-1]:.3f}; "
          f"{_flavour()} fit loss {keras_losses[0]:.3f} -> "
          f"{keras_losses[-1]:.3f}")


def _flavour() -> str:
  from hub_adapter import runtime  # pylint: disable=g-import-not-at-top
  return {runtime.KERAS3: "Keras 3", runtime.TF_KERAS: "tf_keras"}[
      runtime.keras_flavour()]


def _keras_fit(path: str) -> List[float]:
  from hub_adapter import keras_layer  # pylint: disable=g-import-not-at-top
  from hub_adapter import runtime  # pylint: disable=g-import-not-at-top
  from hub_adapter import tiny_models  # pylint: disable=g-import-not-at-top
  keras = runtime.keras_module()
  model = keras.Sequential([
      keras.Input(shape=(2,)),
      keras_layer.KerasLayer(path, trainable=True),
  ])
  model.compile(optimizer=_sgd(keras, 0.05), loss="mse")
  history = model.fit(tiny_models.INPUT, tiny_models.TARGET, epochs=3,
                      batch_size=2, verbose=0)
  losses = history.history["loss"]
  if not losses[-1] < losses[0]:
    raise AssertionError(f"Keras fit loss did not go down: {losses}")
  return losses


def _sgd(keras, learning_rate: float):
  """SGD for this Keras; tf_keras in graph mode needs its legacy optimizer."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  legacy = getattr(keras.optimizers, "legacy", None)
  if legacy is not None and not tf.compat.v1.executing_eagerly_outside_functions():
    return legacy.SGD(learning_rate)
  return keras.optimizers.SGD(learning_rate)


def _probe_finetune_graph(fmt: Format, root: str) -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import hub_adapter  # pylint: disable=g-import-not-at-top
  from hub_adapter import tiny_models  # pylint: disable=g-import-not-at-top
  path = _model_dir(root, fmt, Mode.TF1_COMPAT)
  with tf.Graph().as_default():
    model = hub_adapter.load(path, trainable=True)
    y = _single_output(model(tf.constant(tiny_models.INPUT), training=True))
    loss = tf.reduce_mean(tf.square(y - tiny_models.TARGET))
    update_ops = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
    with tf.control_dependencies(update_ops):
      train_op = tf.compat.v1.train.GradientDescentOptimizer(0.05).minimize(
          loss)
    with tf.compat.v1.Session() as session:
      session.run([tf.compat.v1.global_variables_initializer(),
                   tf.compat.v1.tables_initializer()])
      losses = [session.run([loss, train_op])[0] for _ in range(3)]
  if not losses[-1] < losses[0]:
    raise AssertionError(f"loss did not go down: {losses}")
  detail = (f"GradientDescentOptimizer loss {losses[0]:.3f} -> "
            f"{losses[-1]:.3f}, {len(update_ops)} update op(s) run")
  if fmt is Format.TF2_SAVED_MODEL:
    keras_losses = _keras_fit(path)
    detail += (f"; {_flavour()} fit loss {keras_losses[0]:.3f} -> "
               f"{keras_losses[-1]:.3f}")
  return detail


def _probe(fmt: Format, op: Operation, mode: Mode, root: str) -> str:
  if op is Operation.CREATE:
    return _probe_create(fmt, mode, root)
  if mode is Mode.TF2:
    return (_probe_load_tf2 if op is Operation.LOAD
            else _probe_finetune_tf2)(fmt, root)
  return (_probe_load_graph if op is Operation.LOAD
          else _probe_finetune_graph)(fmt, root)


def _first_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0] if text else ''}"


def run_cell(fmt: Format, op: Operation, mode: Mode, root: str) -> CellResult:
  """Runs one cell in this process (which must already be in ``mode``).

  Args:
    fmt: The format.
    op: The operation.
    mode: The mode this process runs in.
    root: The folder holding the tiny models.

  Returns:
    The cell's result.
  """
  works_when = ""
  cell = support.lookup(fmt, op, mode)
  if getattr(cell, "works_when", ""):
    probe = _WORKS_WHEN_PROBES.get((fmt, op, mode))
    try:
      if probe is None:
        raise AssertionError("the matrix has no probe for it")
      works_when = f"{WORKED}: {probe(root)}"
    except Exception as e:  # pylint: disable=broad-except
      works_when = f"{FAILED}: {_first_line(e)}"
      traceback.print_exc(file=sys.stderr)
  try:
    detail = _probe(fmt, op, mode, root)
    outcome = WORKED
  except errors.UnsupportedOperationError as e:
    outcome, detail = REFUSED, _first_line(e)
  except errors.BackendUnavailableError as e:
    outcome, detail = PENDING, _first_line(e)
  except Exception as e:  # pylint: disable=broad-except
    outcome, detail = FAILED, _first_line(e)
    traceback.print_exc(file=sys.stderr)
  return CellResult(fmt.value, op.value, mode.value, outcome, detail,
                    works_when)


_ORDER = (Operation.CREATE, Operation.LOAD, Operation.FINE_TUNE)


def worker(mode: Mode, root: str) -> List[CellResult]:
  """Runs every cell of one mode in this process.

  Args:
    mode: The mode to switch this fresh process into.
    root: The folder for the tiny models.

  Returns:
    One result per (format, operation).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if mode is Mode.TF1_COMPAT:
    tf.compat.v1.disable_v2_behavior()
  results = []
  for op in _ORDER:
    for fmt in Format:
      result = run_cell(fmt, op, mode, root)
      print(_RESULT_PREFIX + json.dumps(dataclasses.asdict(result)),
            flush=True)
      results.append(result)
  return results


def _run_worker(mode: Mode, root: str, log: Callable[[str], None]
                ) -> List[CellResult]:
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  log(f"running the {mode.title} cells in a fresh process ...")
  proc = subprocess.run(
      [sys.executable, "-m", "hub_adapter.matrix", mode.value, root],
      env=env, capture_output=True, text=True, check=False)
  results = [CellResult(**json.loads(line[len(_RESULT_PREFIX):]))
             for line in proc.stdout.splitlines()
             if line.startswith(_RESULT_PREFIX)]
  seen = {(r.format, r.operation) for r in results}
  for op in _ORDER:
    for fmt in Format:
      if (fmt.value, op.value) not in seen:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        results.append(CellResult(
            fmt.value, op.value, mode.value, FAILED,
            f"worker exited with {proc.returncode}: {tail[0]}"))
  if proc.returncode != 0 or any(r.outcome == FAILED for r in results):
    log(proc.stderr[-4000:])
  return results


def run_all(root: Optional[str] = None,
            log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)
            ) -> List[CellResult]:
  """Runs all 12 cells, each mode in its own process.

  Args:
    root: Folder for the tiny models (default: a new temporary folder,
      removed afterwards).
    log: Where progress lines go.

  Returns:
    The 12 results, in table order.
  """
  if root is None:
    with tempfile.TemporaryDirectory(prefix="hub_adapter_matrix_") as tmp:
      return run_all(tmp, log)
  results = _run_worker(Mode.TF1_COMPAT, root, log)
  results += _run_worker(Mode.TF2, root, log)
  order = {key: i for i, key in enumerate(support.TABLE)}
  return sorted(results, key=lambda r: order[r.key])


def render(results: List[CellResult]) -> str:
  """Formats results as a text table with a closing summary line."""
  header = ("format", "operation", "mode", "official", "observed", "verdict")
  rows, notes = [], []
  for r in results:
    fmt, op, mode = r.key
    observed = f"{r.outcome}: {r.detail}"
    cell = support.TABLE[r.key]
    if getattr(cell, "works_when", ""):
      state = "works" if r.works_when.startswith(WORKED) else "FAILED"
      notes.append(
          f"[{len(notes) + 1}] {fmt.title}, {op.title}, {mode.title}: "
          f"official: no; observed: {state} when {cell.works_when} "
          f"({r.works_when}); otherwise {observed}")
      observed = f"{state} when {cell.works_when} [{len(notes)}]"
    rows.append((fmt.title, op.title, mode.title,
                 "yes" if r.official else "not supported",
                 observed, r.verdict))
  widths = [max(len(str(row[i])) for row in rows + [header])
            for i in range(len(header))]
  widths[4] = min(widths[4], 110)

  def line(row):
    cells = [str(c)[:widths[i]].ljust(widths[i]) for i, c in enumerate(row)]
    return " | ".join(cells).rstrip()

  out = [line(header), "-+-".join("-" * w for w in widths)]
  out += [line(row) for row in rows]
  if notes:
    out.append("")
    out += notes
  counts = {v: sum(r.verdict == v for r in results)
            for v in ("agree", "DISAGREE", "pending")}
  out.append(f"\n{counts['agree']} agree, {counts['DISAGREE']} disagree, "
             f"{counts['pending']} pending")
  return "\n".join(out)


def main(argv: List[str]) -> int:
  """Worker entry point: ``python -m hub_adapter.matrix MODE ROOT``."""
  mode, root = Mode(argv[0]), argv[1]
  worker(mode, root)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
