"""KerasLayer on Keras' JAX backend vs the same model on its TensorFlow backend.

Usage (the tf221-jax environment has both backends' packages):

  .tox/tf221-jax/bin/python benchmarks/bench_jax.py            # 3 repeats
  .tox/tf221-jax/bin/python benchmarks/bench_jax.py --quick    # 1 repeat, short blocks

Keras picks its backend once per process, so every repeat runs one child
process per backend (``KERAS_BACKEND=tensorflow`` / ``jax``, order
alternating between repeats) on the same models; the driver prints, for each
case, both times and their ratio (JAX / TensorFlow: above 1 means JAX is
slower), the ratio being the median over repeats of the per-repeat ratio,
with the repeats' range as the noise figure. Results go to
``benchmarks/results/jax.json`` (``--out``).

Models (built once into ``$HUB_ADAPTER_BENCH_DIR/jax``, default
``/tmp/hub_adapter_bench/jax``):

- ``cnn_bn``: a tf_keras CNN saved as a TF2 SavedModel (``model.save(...,
  save_format="tf")``, as many TF Hub image models were made): 32x32x3
  input, three 3x3 convolutions (32, 64, 128 channels) each with batch
  normalization and ReLU, global average pooling, Dense(64); L2
  regularization on the kernels. 0.1 M parameters.
- ``mlp``: the fit section's ReLU MLP 256-512-512 (benchmarks/make_models.py).

Each child builds ``Input -> hub_adapter.KerasLayer(trainable=True) ->
Dense(10)``, compiled with SGD and MSE, once per ``jit_compile`` setting:
Keras' default for the backend (TensorFlow on a CPU-only machine: no XLA;
JAX: jit) and the other one. It times ``predict_on_batch`` (Keras' compiled
predict function) at batch 1 and 256 in interleaved blocks, and ``fit``
steps at batch 32 (the median gap between consecutive
``on_train_batch_end`` calls, after an untimed warm-up epoch; the
non-default setting, shown for reference, gets 6 steps and no warm-up
epoch). It also records the first call's time (tracing and compilation)
and, to show where a training step's time goes, the layer's forward pass
and forward + gradient pass at batch 32 outside Keras' trainer: on
TensorFlow with its own kernels and with XLA
(``tf.function(jit_compile=True)``), on JAX under ``jax.jit``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position
import make_models  # pylint: disable=g-import-not-at-top,wrong-import-position

GENERATOR_VERSION = "1"
MODELS = {"cnn_bn": (32, 32, 3), "mlp": (make_models.FIT_DIMS[0],)}
HEAD = 10
FIT_BATCH = 32
BACKENDS = ("tensorflow", "jax")
DEFAULT_JIT = {"tensorflow": False, "jax": True}  # Keras' "auto" on CPU.
GOAL = 1.5


# -- models ---------------------------------------------------------------------

def _build_cnn(path: str) -> None:
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tf_keras  # pylint: disable=g-import-not-at-top
  tf_keras.utils.set_random_seed(0)
  l2 = tf_keras.regularizers.L2(1e-4)
  layers = [tf_keras.Input(MODELS["cnn_bn"])]
  for k, (filters, stride) in enumerate(((32, 1), (64, 2), (128, 2))):
    layers += [
        tf_keras.layers.Conv2D(filters, 3, strides=stride, padding="same",
                               use_bias=False, kernel_regularizer=l2,
                               name=f"conv{k}"),
        tf_keras.layers.BatchNormalization(name=f"bn{k}"),
        tf_keras.layers.ReLU()]
  layers += [tf_keras.layers.GlobalAveragePooling2D(),
             tf_keras.layers.Dense(64, kernel_regularizer=l2, name="features")]
  model = tf_keras.Sequential(layers)
  model(np.zeros((1,) + MODELS["cnn_bn"], np.float32))
  model.save(path, save_format="tf")


def build_models(root: str) -> Dict[str, str]:
  """Builds the models once (TensorFlow only); returns name -> folder."""
  paths = {}
  for name in MODELS:
    path = os.path.join(root, name)
    stamp = path + ".done"
    paths[name] = path
    if os.path.exists(stamp) and open(stamp).read() == GENERATOR_VERSION:
      continue
    code = (f"import sys; sys.path.insert(0, {_common.HERE!r}); "
            "import bench_jax, make_models; "
            + ("bench_jax._build_cnn(sys.argv[1])" if name == "cnn_bn" else
               "make_models._tf2_mlp_model(sys.argv[1], "
               "make_models.FIT_DIMS)"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("KERAS_BACKEND", None)
    subprocess.run([sys.executable, "-c", code, path], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    with open(stamp, "w") as f:
      f.write(GENERATOR_VERSION)
  return paths


# -- the child: one backend ------------------------------------------------------------

def _calls_per_block(fn, target_s: float) -> int:
  start = time.perf_counter()
  fn()
  once = max(time.perf_counter() - start, 1e-6)
  return max(1, min(2000, int(target_s / once)))


def measure(args: Dict[str, Any]) -> Dict[str, Any]:
  """Times one backend on every model and ``jit_compile`` setting.

  Args:
    args: ``paths`` (name -> folder), ``blocks``, ``block_s``,
      ``fit_steps``, ``fit_epochs``.

  Returns:
    ``{"backend": ..., "cases": {model: {jit: {...}}}}`` with seconds per
    call/step and first-call seconds.
  """
  _common.quiet_tensorflow()
  import numpy as np  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  import hub_adapter as hub  # pylint: disable=g-import-not-at-top
  backend = keras.backend.backend()
  rng = np.random.default_rng(0)
  cases: Dict[str, Any] = {}
  for name, path in sorted(args["paths"].items()):
    shape = MODELS[name]
    for jit in (DEFAULT_JIT[backend], not DEFAULT_JIT[backend]):
      keras.utils.set_random_seed(0)
      start = time.perf_counter()
      layer = hub.KerasLayer(path, trainable=True)
      made_s = time.perf_counter() - start
      model = keras.Sequential([keras.Input(shape), layer,
                                keras.layers.Dense(HEAD)])
      model.compile(optimizer=keras.optimizers.SGD(0.001), loss="mse",
                    jit_compile=jit)
      record: Dict[str, Any] = {"layer_s": made_s}
      inputs = {b: rng.standard_normal((b,) + shape, dtype=np.float32)
                for b in (1, 256)}
      fns = {}
      for batch, x in inputs.items():
        start = time.perf_counter()
        model.predict_on_batch(x)
        record[f"first_call_b{batch}_s"] = time.perf_counter() - start
        fns[f"b{batch}"] = (lambda x=x: model.predict_on_batch(x))
      calls = {key: _calls_per_block(fn, args["block_s"])
               for key, fn in fns.items()}
      for key, fn in fns.items():
        times = _common.block_times({key: fn}, calls[key], 1)
        del times  # One untimed block per variant.
      samples: Dict[str, List[float]] = {key: [] for key in fns}
      for block in range(args["blocks"]):
        order = list(fns) if block % 2 == 0 else list(fns)[::-1]
        for key in order:
          got = _common.block_times({key: fns[key]}, calls[key], 1)
          samples[key].extend(got[key])
      for key, values in samples.items():
        record[f"call_{key}_s"] = _common.median(values)
        record[f"call_{key}_spread"] = _common.spread(values)
      # The other setting is for reference only: fewer steps, no warm-up
      # epoch (JAX without jit runs op by op; TensorFlow with XLA compiles
      # slowly on CPU).
      default = jit == DEFAULT_JIT[backend]
      steps = args["fit_steps"] if default else 6
      n = FIT_BATCH * steps
      x = rng.standard_normal((n,) + shape, dtype=np.float32)
      y = rng.standard_normal((n, HEAD), dtype=np.float32)
      gaps: List[float] = []

      class StepTimer(keras.callbacks.Callback):
        last: Optional[float] = None

        def on_epoch_begin(self, epoch, logs=None):
          StepTimer.last = None

        def on_train_batch_end(self, batch, logs=None):
          now = time.perf_counter()
          if StepTimer.last is not None:
            gaps.append(now - StepTimer.last)
          StepTimer.last = now

      start = time.perf_counter()
      model.fit(x[:FIT_BATCH], y[:FIT_BATCH], batch_size=FIT_BATCH,
                epochs=1, verbose=0)
      record["first_fit_s"] = time.perf_counter() - start
      if default:
        model.fit(x, y, batch_size=FIT_BATCH, epochs=1, verbose=0,
                  shuffle=False)  # Warm-up epoch, untimed.
      gaps.clear()
      model.fit(x, y, batch_size=FIT_BATCH,
                epochs=args["fit_epochs"] if default else 1,
                verbose=0, shuffle=False, callbacks=[StepTimer()])
      record["fit_step_s"] = _common.median(gaps)
      record["fit_step_spread"] = _common.spread(gaps)
      record["fit_steps_timed"] = len(gaps)
      cases.setdefault(name, {})[f"jit{int(jit)}"] = record
    cases[name]["breakdown"] = _breakdown(
        backend, hub.KerasLayer(path, trainable=True),
        rng.standard_normal((FIT_BATCH,) + shape, dtype=np.float32), args)
  return {"backend": backend, "cases": cases}


def _breakdown(backend: str, layer: Any, x: Any,
               args: Dict[str, Any]) -> Dict[str, Any]:
  """Where a training step's time goes, without Keras' trainer.

  Times the layer's forward pass with ``training=True`` (``fwd``) and the
  forward pass plus the gradient of a loss with respect to the layer's
  trainable weights (``fwd_bwd``), at the fit batch size: on TensorFlow in a
  ``tf.function`` with TensorFlow's kernels and with XLA; on JAX under
  ``jax.jit``.
  """
  fns = {}
  if backend == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    weights = [w.value for w in layer.trainable_weights]

    def fwd_bwd(x):
      with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(layer(x, training=True)))
      return tape.gradient(loss, weights)

    for suffix, jit in (("", False), ("_xla", True)):
      fwd = tf.function(lambda x: layer(x, training=True), jit_compile=jit)
      both = tf.function(fwd_bwd, jit_compile=jit)
      fns[f"fwd{suffix}"] = lambda f=fwd: f(x).numpy()
      fns[f"fwd_bwd{suffix}"] = lambda f=both: f(x)[0].numpy()
  else:
    import jax  # pylint: disable=g-import-not-at-top
    trainable = [w.value for w in layer.trainable_variables]
    non_trainable = [w.value for w in layer.non_trainable_variables]

    def forward(trainable, x):
      return layer.stateless_call(trainable, non_trainable, x,
                                  training=True)[0]

    def loss(trainable, x):
      return jax.numpy.mean(jax.numpy.square(forward(trainable, x)))

    fwd = jax.jit(forward)
    both = jax.jit(jax.grad(loss))
    fns["fwd"] = lambda: fwd(trainable, x).block_until_ready()
    fns["fwd_bwd"] = lambda: both(trainable, x)[0].block_until_ready()
  out: Dict[str, Any] = {}
  for key, fn in list(fns.items()):
    fn()  # Trace and compile.
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    if once > 2.0:
      # TensorFlow recompiles some XLA gradients on every call (seen for
      # cnn_bn's fwd+bwd): one more call is the figure.
      out[f"{key}_s"] = once
      del fns[key]
  calls = {key: _calls_per_block(fn, args["block_s"])
           for key, fn in fns.items()}
  samples: Dict[str, List[float]] = {key: [] for key in fns}
  for block in range(args["blocks"]):
    order = list(fns) if block % 2 == 0 else list(fns)[::-1]
    for key in order:
      samples[key].extend(
          _common.block_times({key: fns[key]}, calls[key], 1)[key])
  out.update({f"{key}_s": _common.median(v) for key, v in samples.items()})
  return out


# -- the driver ---------------------------------------------------------------------------

def _run_child(backend: str, args: Dict[str, Any]) -> Dict[str, Any]:
  env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_USE_LEGACY_KERAS", None)
  done = subprocess.run(
      [sys.executable, os.path.abspath(__file__), "--child", json.dumps(args)],
      env=env, capture_output=True, text=True)
  for line in done.stdout.splitlines():
    if line.startswith(_common.RESULT_PREFIX):
      return json.loads(line[len(_common.RESULT_PREFIX):])
  raise RuntimeError(f"the {backend} child failed:\n{done.stderr[-6000:]}")


def _fmt(seconds: Optional[float]) -> str:
  if seconds is None:
    return "-"
  if seconds >= 1:
    return f"{seconds:.2f} s"
  if seconds >= 1e-3:
    return f"{seconds * 1e3:.2f} ms"
  return f"{seconds * 1e6:.0f} us"


ROWS = [
    # (label, metric, jax jit, tf jit)
    ("call, batch 1 (predict_on_batch)", "call_b1_s", True, False),
    ("call, batch 256 (predict_on_batch)", "call_b256_s", True, False),
    ("fit step, batch 32", "fit_step_s", True, False),
    ("call, batch 1, both XLA", "call_b1_s", True, True),
    ("call, batch 256, both XLA", "call_b256_s", True, True),
    ("fit step, both XLA", "fit_step_s", True, True),
    ("call, batch 1, JAX without jit", "call_b1_s", False, False),
    ("call, batch 256, JAX without jit", "call_b256_s", False, False),
    ("fit step, JAX without jit", "fit_step_s", False, False),
]


def summarize(runs: List[Dict[str, Dict[str, Any]]]) -> List[Dict[str, Any]]:
  """Per case: median times, the median per-repeat ratio and its range."""
  rows = []
  for name in sorted(MODELS):
    for label, metric, jax_jit, tf_jit in ROWS:
      pairs = []
      for run in runs:
        j = run["jax"]["cases"][name][f"jit{int(jax_jit)}"].get(metric)
        t = run["tensorflow"]["cases"][name][f"jit{int(tf_jit)}"].get(metric)
        if j and t:
          pairs.append((j, t))
      ratios = [j / t for j, t in pairs]
      rows.append({
          "model": name, "case": label, "metric": metric,
          "jax_jit": jax_jit, "tf_jit": tf_jit,
          "jax_s": _common.sig(_common.median(j for j, _ in pairs)),
          "tf_s": _common.sig(_common.median(t for _, t in pairs)),
          "ratio": _common.sig(_common.median(ratios), 3),
          "range": [_common.sig(min(ratios), 3), _common.sig(max(ratios), 3)]
                   if ratios else None,
          "headline": not jax_jit is False and not tf_jit,
      })
  return rows


def breakdowns(runs) -> List[Dict[str, Any]]:
  """Median forward / forward+backward times per model and compiler."""
  out = []
  for name in sorted(MODELS):
    tf_recs = [r["tensorflow"]["cases"][name]["breakdown"] for r in runs]
    jax_recs = [r["jax"]["cases"][name]["breakdown"] for r in runs]
    row = {"model": name}
    for key in ("fwd_s", "fwd_bwd_s", "fwd_xla_s", "fwd_bwd_xla_s"):
      row[f"tf_{key}"] = _common.sig(_common.median(r[key] for r in tf_recs))
    for key in ("fwd_s", "fwd_bwd_s"):
      row[f"jax_{key}"] = _common.sig(_common.median(r[key] for r in jax_recs))
    out.append(row)
  return out


def first_calls(runs) -> List[Dict[str, Any]]:
  """Median first-call (trace + compile) seconds per model and setting."""
  out = []
  for name in sorted(MODELS):
    for backend in BACKENDS:
      for jit in ("jit0", "jit1"):
        recs = [r[backend]["cases"][name][jit] for r in runs]
        out.append({
            "model": name, "backend": backend, "jit": jit == "jit1",
            **{k: _common.sig(_common.median(r[k] for r in recs), 3)
               for k in ("layer_s", "first_call_b1_s", "first_call_b256_s",
                         "first_fit_s")}})
  return out


def print_breakdown(rows) -> None:
  """Forward (fwd) and forward + gradient (fwd+bwd) passes, and ratios:
  XLA's kernels vs TensorFlow's (forward), JAX's call_tf vs TensorFlow
  running the same XLA (forward), and the share of JAX's fwd+bwd that is
  the forward pass call_tf's gradient recomputes."""
  print("| model | TF fwd | TF fwd+bwd | TF+XLA fwd | TF+XLA fwd+bwd | "
        "JAX fwd | JAX fwd+bwd | XLA / TF kernels (fwd) | JAX / TF+XLA "
        "(fwd) | recomputed fwd in JAX fwd+bwd |")
  print("|---|---|---|---|---|---|---|---|---|---|")

  def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"

  for r in rows:
    print(f"| {r['model']} | {_fmt(r['tf_fwd_s'])} | {_fmt(r['tf_fwd_bwd_s'])}"
          f" | {_fmt(r['tf_fwd_xla_s'])} | {_fmt(r['tf_fwd_bwd_xla_s'])} | "
          f"{_fmt(r['jax_fwd_s'])} | {_fmt(r['jax_fwd_bwd_s'])} | "
          f"{ratio(r['tf_fwd_xla_s'], r['tf_fwd_s'])} | "
          f"{ratio(r['jax_fwd_s'], r['tf_fwd_xla_s'])} | "
          f"{ratio(r['jax_fwd_s'], r['jax_fwd_bwd_s'])} |")


def print_table(rows, firsts) -> None:
  header = ("| model | case | JAX backend | TensorFlow backend | ratio | "
            "repeats' range |")
  print(header)
  print("|---|---|---|---|---|---|")
  for row in rows:
    jax_mode = "jit" if row["jax_jit"] else "eager"
    tf_mode = "XLA" if row["tf_jit"] else "tf.function"
    flag = " **(> 1.5)**" if row["ratio"] and row["ratio"] > GOAL and \
        row["headline"] else ""
    rng = (f"{row['range'][0]:.3g}-{row['range'][1]:.3g}" if row["range"]
           else "-")
    print(f"| {row['model']} | {row['case']} | {_fmt(row['jax_s'])} "
          f"({jax_mode}) | {_fmt(row['tf_s'])} ({tf_mode}) | "
          f"{row['ratio']}{flag} | {rng} |")
  print()
  print("| model | backend | jit_compile | KerasLayer(...) | first predict "
        "b1 | first predict b256 | first fit (1 step) |")
  print("|---|---|---|---|---|---|---|")
  for f in firsts:
    print(f"| {f['model']} | {f['backend']} | {f['jit']} | "
          f"{_fmt(f['layer_s'])} | {_fmt(f['first_call_b1_s'])} | "
          f"{_fmt(f['first_call_b256_s'])} | {_fmt(f['first_fit_s'])} |")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--child", help=argparse.SUPPRESS)
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--repeats", type=int, default=None)
  parser.add_argument("--dir", default=os.path.join(
      os.environ.get("HUB_ADAPTER_BENCH_DIR", "/tmp/hub_adapter_bench"),
      "jax"))
  parser.add_argument("--out", default=os.path.join(
      _common.HERE, "results", "jax.json"))
  args = parser.parse_args(argv)
  if args.child:
    sys.argv = [sys.argv[0], args.child]
    _common.child_main(measure)
    return
  started = time.time()
  os.makedirs(args.dir, exist_ok=True)
  paths = build_models(args.dir)
  repeats = args.repeats or (1 if args.quick else 3)
  child_args = {"paths": paths, "blocks": 5 if args.quick else 15,
                "block_s": 0.05 if args.quick else 0.1,
                "fit_steps": 10 if args.quick else 30,
                "fit_epochs": 1 if args.quick else 2}
  runs = []
  for repeat in range(repeats):
    order = BACKENDS if repeat % 2 == 0 else BACKENDS[::-1]
    run = {}
    for backend in order:
      print(f"repeat {repeat + 1}/{repeats}: {backend} ...", flush=True)
      run[backend] = _run_child(backend, child_args)
    runs.append(run)
  rows = summarize(runs)
  firsts = first_calls(runs)
  split = breakdowns(runs)
  print_table(rows, firsts)
  print()
  print_breakdown(split)
  import jax  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  result = {
      "when": datetime.datetime.now().isoformat(timespec="seconds"),
      "minutes": round((time.time() - started) / 60, 2),
      "repeats": repeats, "quick": args.quick, "settings": child_args,
      "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                   "jax": jax.__version__, "python": platform.python_version(),
                   "cpus": os.cpu_count()},
      "rows": rows, "first_calls": firsts, "breakdown": split,
      "runs": runs}
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
  print(f"\n{repeats} repeat(s) in {result['minutes']} min; wrote {args.out}")


if __name__ == "__main__":
  main()
