"""Benchmarks hub_adapter against raw TensorFlow and tensorflow_hub.

One command runs everything, prints a table, writes JSON and draws a PNG of
load time against model size:

  .tox/tf221/bin/python benchmarks/run.py            # full: 5 repeats
  .tox/tf221/bin/python benchmarks/run.py --quick    # smoke test: 1 MiB, 1 repeat

Every figure is a ratio against the raw path measured in the same run:
the median over repeats of (hub_adapter / reference) with each pair measured
back to back, the order alternating between repeats. Each load is a fresh
child process, since start-up (first tracing, lazy imports) is part of what
a user waits for. The models, up to 1 GiB, are generated once into a folder
outside the repository ($HUB_ADAPTER_BENCH_DIR, default
/tmp/hub_adapter_bench) and reused.

Sections (``--sections``): load (with the page-cache read limit and peak
memory), call, fit, tf1 (needs the TF 2.15 environment, found through
$HUB_ADAPTER_TF215_PYTHON or .tox/tf215), cache, restore (the parallel
variable restore against tf.saved_model.load, hub.load, the model rebuild
alone and a plain read, with 1, 2 and 4 read threads; run alone it writes
results/restore.json and leaves latest.json as it is).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import http.server
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # pylint: disable=g-import-not-at-top,wrong-import-position
import make_models  # pylint: disable=g-import-not-at-top,wrong-import-position
import plot  # pylint: disable=g-import-not-at-top,wrong-import-position

SECTIONS = ("load", "call", "fit", "tf1", "cache", "restore")
LOADERS = ("adapter", "hub", "tf")
LOADER_TITLES = {"adapter": "hub_adapter.load", "hub": "hub.load",
                 "tf": "tf.saved_model.load"}
SIZE_TITLES = {"1mb": "1 MiB", "100mb": "100 MiB", "1gb": "1 GiB"}
GOAL = 1.05
RESULTS = os.path.join(_common.HERE, "results")


@dataclasses.dataclass
class Settings:
  """How much to measure; ``quick()`` is the smoke-test variant."""
  repeats: int = 5
  sizes: tuple = ("1mb", "100mb", "1gb")
  tf1_sizes: tuple = ("1mb", "100mb")
  cache_size: str = "100mb"
  call_blocks: int = 25
  fit_batch: int = 64
  fit_steps: int = 50
  fit_rounds: int = 5
  tf1_calls: int = 100
  tf1_blocks: int = 30
  keras_flavours: tuple = ("keras3", "tf_keras")
  restore_models: tuple = tuple(make_models.RESTORE_SHAPES) + (
      make_models.RESTORE_BERT, make_models.RESTORE_TF1)
  restore_threads: tuple = (1, 2, 4)
  profile: bool = True

  @classmethod
  def quick(cls) -> "Settings":
    return cls(repeats=1, sizes=("1mb",), tf1_sizes=("1mb",),
               cache_size="1mb", call_blocks=5, fit_steps=20, fit_rounds=2,
               tf1_calls=100, tf1_blocks=6,
               restore_models=("restore_256x2mb",))


def rotate(items, n):
  """Rotates the order each repeat so no variant always runs first."""
  items = list(items)
  n %= len(items)
  return items[n:] + items[:n]


def log(message: str) -> None:
  sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
  sys.stderr.flush()


class Ratio(float):
  """A median ratio that also knows the range of the per-repeat ratios."""
  lo: float
  hi: float


def ratio_of(pairs) -> Optional[Ratio]:
  """Median of per-repeat ratios a/b, for pairs measured back to back."""
  ratios = [a / b for a, b in pairs if a is not None and b not in (None, 0)]
  if not ratios:
    return None
  out = Ratio(_common.median(ratios))
  out.lo, out.hi = min(ratios), max(ratios)
  return out


def warm_page_cache(path: str) -> None:
  """Reads every file under ``path`` so all runs start from the page cache."""
  files = ([path] if os.path.isfile(path) else
           [os.path.join(d, f) for d, _, names in os.walk(path) for f in names])
  buffer = bytearray(16 << 20)
  for name in files:
    with open(name, "rb", buffering=0) as f:
      while f.readinto(buffer):
        pass


class ArchiveServer:
  """Serves NAME.tar.gz files from a folder at http://127.0.0.1:PORT/NAME.

  The query string (tensorflow_hub adds ``?tf-hub-format=compressed``) and a
  ``.tar.gz`` suffix are ignored, so one URL works for every resolver.
  """

  def __init__(self, root: str):
    root = os.path.abspath(root)

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):  # pylint: disable=invalid-name
        name = urllib.parse.urlparse(self.path).path.strip("/")
        name = name.removesuffix(".tar.gz").rsplit("/", 1)[-1]
        path = os.path.join(root, name + ".tar.gz")
        if not name or not os.path.isfile(path):
          self.send_error(404)
          return
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(os.path.getsize(path)))
        self.end_headers()
        with open(path, "rb") as f:
          shutil.copyfileobj(f, self.wfile, 1 << 20)

      def log_message(self, *args):  # Quiet.
        pass

    self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self._thread = threading.Thread(target=self._server.serve_forever,
                                    daemon=True)
    self._thread.start()

  def url(self, name: str) -> str:
    return f"http://127.0.0.1:{self._server.server_port}/models/{name}"

  def close(self) -> None:
    self._server.shutdown()
    self._server.server_close()


class Runner:
  """Starts child measurements and keeps the rows of the summary table."""

  def __init__(self, settings: Settings, bench_dir: str, py221: str,
               py215: Optional[str]):
    self.settings = settings
    self.dir = bench_dir
    self.py221 = py221
    self.py215 = py215
    self.rows: List[Dict[str, Any]] = []
    self.data: Dict[str, Any] = {}
    self.tmp = os.path.join(bench_dir, "tmp")
    os.makedirs(self.tmp, exist_ok=True)

  # Children ----------------------------------------------------------------
  def child(self, script: str, args: Dict[str, Any],
            python: Optional[str] = None, env: Optional[Dict[str, str]] = None,
            timeout: float = 900) -> Dict[str, Any]:
    """Runs benchmarks/SCRIPT in a fresh process; returns its result dict.

    A crash or timeout becomes ``{"error": ...}`` so one broken measurement
    does not lose the others.
    """
    child_env = dict(os.environ)
    child_env.pop("TF_USE_LEGACY_KERAS", None)
    child_env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0",
                      "TFHUB_CACHE_DIR": os.path.join(self.tmp, "unused_cache")})
    child_env.update(env or {})
    command = [python or self.py221, os.path.join(_common.HERE, script),
               json.dumps(args)]
    try:
      done = subprocess.run(command, env=child_env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
      return {"error": f"{script} timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
      if line.startswith(_common.RESULT_PREFIX):
        return json.loads(line[len(_common.RESULT_PREFIX):])
    tail = [l for l in done.stderr.strip().splitlines()
            if not l.startswith(("I0000", "W0000", "E0000", "WARNING: All"))]
    return {"error": f"{script} exited {done.returncode}: "
                     + (tail[-1] if tail else "no output")}

  def build_models(self, sections) -> None:
    s = self.settings
    tf2 = set()
    if "load" in sections:
      tf2.update(f"tf2_load_{x}" for x in s.sizes)
    if "call" in sections:
      tf2.add("tf2_call")
    if "fit" in sections:
      tf2.add("tf2_fit")
    if "cache" in sections:
      tf2.add(f"tf2_load_{s.cache_size}")
    if "restore" in sections:
      tf2.update(s.restore_models)
    tf1 = set()
    if "load" in sections or "tf1" in sections:
      tf1.update(f"tf1_load_{x}" for x in s.tf1_sizes)
    log(f"models in {self.dir}: building what is missing of "
        f"{sorted(tf2 | tf1)}")
    result = self._make("tf2", sorted(tf2), self.py221,
                        archive=[f"tf2_load_{s.cache_size}"]
                        if "cache" in sections else [])
    self.data["model_build_s"] = result.get("built", result)
    if tf1:
      if self.py215:
        try:
          result = self._make("tf1", sorted(tf1), self.py215)
          self.data["model_build_s_tf1"] = result.get("built", result)
        except RuntimeError as e:  # The TF1 rows then say "not built".
          log(str(e))
          self.data["model_build_s_tf1"] = {"error": str(e)[-500:]}
      else:
        self.data["model_build_s_tf1"] = {"error": "no TF 2.15 environment"}

  def _make(self, kind, names, python, archive=()):
    command = [python, os.path.join(_common.HERE, "make_models.py"),
               "--dir", self.dir, "--kind", kind, "--names", ",".join(names),
               "--archive", ",".join(archive)]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    for line in done.stdout.splitlines():
      if line.startswith(_common.RESULT_PREFIX):
        return json.loads(line[len(_common.RESULT_PREFIX):])
    raise RuntimeError(f"building {kind} models failed:\n{done.stderr[-3000:]}")

  def profile(self, case: str, script: str, args: Dict[str, Any],
              env: Optional[Dict[str, str]] = None) -> None:
    """One extra, untimed child under cProfile: where the adapter's time goes.

    Kept apart from the timed repeats because profiling slows Python code
    and so would distort the ratios.
    """
    log(f"profile {case}")
    result = self.child(script, args, env=env)
    if "profile" not in result:
      self.data.setdefault("profiles", {})[case] = (
          _first_problem([result]) or "no profile")
      return
    entry = {"total_s": _common.sig(result.get("load_s",
                                               result.get("resolve_s"))),
             "hot": result["profile"][:8]}
    modules = result.get("new_modules")
    if modules:
      # What importing the modules that call pulled in costs on its own.
      timed = self.child("bench_load.py", {"import_only": modules})
      entry["lazy_imports"] = {"count": len(modules),
                               "s": _common.sig(timed.get("import_s")),
                               "tensorflow_hub": any(
                                   m.startswith("tensorflow_hub")
                                   for m in modules)}
    self.data.setdefault("profiles", {})[case] = entry

  def has_model(self, name: str) -> bool:
    return make_models.is_built(self.dir, name)

  # Rows --------------------------------------------------------------------
  def row(self, section: str, case: str, adapter: str, reference: str,
          ratio: Optional[float], goal: Optional[float], note: str = "",
          key: str = "") -> None:
    # Judged at the precision shown: 1.0004 reads 1.000 and meets 1.00.
    met = None if goal is None or ratio is None else round(ratio, 3) <= goal
    lo, hi = getattr(ratio, "lo", None), getattr(ratio, "hi", None)
    self.rows.append({"section": section, "case": case, "adapter": adapter,
                      "reference": reference, "ratio": _common.sig(ratio, 3),
                      "range": None if lo is None else
                      [_common.sig(lo, 3), _common.sig(hi, 3)],
                      "goal": goal, "met": met, "note": note, "key": key})

  def unavailable(self, section: str, case: str, reason: str) -> None:
    self.rows.append({"section": section, "case": case,
                      "adapter": "unavailable: " + reason, "reference": "",
                      "ratio": None, "range": None, "goal": None, "met": None, "note": "",
                      "key": ""})


def _fmt_s(seconds: Optional[float]) -> str:
  if seconds is None:
    return "-"
  if seconds >= 1:
    return f"{seconds:.2f} s"
  if seconds >= 1e-3:
    return f"{seconds * 1e3:.1f} ms"
  return f"{seconds * 1e6:.0f} us"


def _fmt_bytes(n: Optional[float]) -> str:
  if n is None:
    return "-"
  return f"{n / (1 << 20):.0f} MiB"


def _own_note(own: Optional[float], reference: Optional[float]) -> str:
  """The adapter's own time, and the ratio it alone would cause."""
  if own is None:
    return ""
  text = f"adapter's own {_fmt_s(own)}"
  if reference:
    text += f" (alone: {1 + own / reference:.3f})"
  return text


def _first_problem(results: List[Dict[str, Any]]) -> Optional[str]:
  for r in results:
    if "unavailable" in r:
      return r["unavailable"]
  for r in results:
    if "error" in r:
      return r["error"]
  return None


def _ok(results):
  return [r for r in results if "error" not in r and "unavailable" not in r]


# Load, hardware limit, memory -------------------------------------------------
def bench_load(run: Runner) -> None:
  s = run.settings
  models = [(f"tf2_load_{x}", x, False) for x in s.sizes]
  if run.py215:
    models += [(f"tf1_load_{x}", x, True) for x in s.tf1_sizes]
  else:
    run.unavailable("load", "TF1 Hub module in TF2",
                    "no TF 2.15 environment to build the TF1 module with "
                    "tensorflow_hub 0.15")
  samples = {name: {l: [] for l in LOADERS} for name, _, _ in models}
  reads = {name: [] for name, _, _ in models}
  for r in range(s.repeats):
    for i, (name, _, tf1) in enumerate(models):
      if not run.has_model(name):
        continue
      folder = os.path.join(run.dir, name)
      warm_page_cache(folder)
      log(f"load {name} repeat {r + 1}/{s.repeats}")
      for loader in rotate(LOADERS, r + i):
        samples[name][loader].append(run.child(
            "bench_load.py", {"handle": folder, "loader": loader, "tf1": tf1}))
      reads[name].append(run.child("bench_read.py", {"folder": folder}))
  if s.profile:
    for name, _, tf1 in models:
      if run.has_model(name):
        run.profile(f"load {name}", "bench_load.py",
                    {"handle": os.path.join(run.dir, name), "loader": "adapter",
                     "tf1": tf1, "profile": True, "second": False})

  out = {}
  plot_series = {LOADER_TITLES[l]: [] for l in LOADERS}
  plot_series["plain read"] = []
  for name, size, tf1 in models:
    case = ("TF1 module in TF2 " if tf1 else "TF2 SavedModel ") + SIZE_TITLES[size]
    per = samples[name]
    if not run.has_model(name):
      run.unavailable("load", case, f"model {name} was not built")
      continue
    problem = _first_problem(per["adapter"])
    ref_problem = _first_problem(per["tf"] + per["hub"])
    # First load in the process, with the loader's own package import.
    first = {l: [r["import_s"] + r["load_s"] if "load_s" in r else None
                 for r in per[l]] for l in LOADERS}
    first_own = [r["import_s"] + r["load_s"] - r["tf_s"] if "load_s" in r
                 else None for r in per["adapter"]]
    warm = {l: [r.get("warm_s") for r in per[l]] for l in LOADERS}
    warm_own = [r["warm_s"] - r["warm_tf_s"] if "warm_s" in r else None
                for r in per["adapter"]]
    read_s = [r.get("read_s") for r in reads[name]]
    read_new = _common.median(r.get("read_new_s") for r in reads[name])
    nbytes = make_models.variable_bytes(size)
    med_first = {l: _common.median(first[l]) for l in LOADERS}
    med_warm = {l: _common.median(warm[l]) for l in LOADERS}
    out[name] = {
        "variable_bytes": nbytes,
        "first_load_s": {l: [_common.sig(v) for v in first[l]] for l in LOADERS},
        "second_load_s": {l: [_common.sig(v) for v in warm[l]] for l in LOADERS},
        "import_s": {l: _common.sig(_common.median(
            r.get("import_s") for r in per[l])) for l in LOADERS},
        "adapter_own_s": {"first": _common.sig(_common.median(first_own)),
                          "second": _common.sig(_common.median(warm_own))},
        "spread": {l: _common.sig(_common.spread(first[l]), 3) for l in LOADERS},
        "read_s": [_common.sig(v) for v in read_s],
        "problem": problem or ref_problem,
    }
    if ref_problem:
      run.unavailable("load", case, f"reference failed: {ref_problem}")
      continue
    for l in LOADERS:
      if med_first[l] and not tf1:
        plot_series[LOADER_TITLES[l]].append((nbytes / (1 << 20), med_first[l]))
    if problem:
      run.unavailable("load", case, problem)
    else:
      spread_tf = out[name]["spread"]["tf"]
      for ref in ("tf", "hub"):
        ratio = ratio_of(zip(first["adapter"], first[ref]))
        out[name][f"first_ratio_vs_{ref}"] = _common.sig(ratio)
        note = ""
        if ref == "tf":
          note = _own_note(out[name]["adapter_own_s"]["first"],
                           med_first["tf"])
          if spread_tf is not None:
            note += f"; tf spread {spread_tf:.0%}"
        else:
          note = f"hub import {_fmt_s(out[name]['import_s']['hub'])} included"
        run.row("load", f"{case}, import + first load vs "
                f"{LOADER_TITLES[ref]}", _fmt_s(med_first["adapter"]),
                _fmt_s(med_first[ref]), ratio, GOAL, note,
                key=f"load.{name}.first.{ref}")
      ratio = ratio_of(zip(warm["adapter"], warm["tf"]))
      hub_ratio = ratio_of(zip(warm["adapter"], warm["hub"]))
      out[name]["second_ratio_vs_tf"] = _common.sig(ratio)
      out[name]["second_ratio_vs_hub"] = _common.sig(hub_ratio)
      run.row("load", f"{case}, second load vs {LOADER_TITLES['tf']}",
              _fmt_s(med_warm["adapter"]), _fmt_s(med_warm["tf"]), ratio,
              GOAL, _own_note(out[name]["adapter_own_s"]["second"],
                              med_warm["tf"])
              + (f"; vs hub.load {hub_ratio:.3f}" if hub_ratio else ""),
              key=f"load.{name}.second.tf")
    # The hardware limit: the same variable bytes through plain reads.
    read = _common.median(read_s)
    if read:
      gbps = nbytes / read / 1e9
      out[name]["read_gb_per_s"] = _common.sig(gbps, 3)
      out[name]["read_new_memory_gb_per_s"] = _common.sig(
          nbytes / read_new / 1e9 if read_new else None, 3)
      if not tf1:
        plot_series["plain read"].append((nbytes / (1 << 20), read))
      for l in ("adapter", "tf"):
        if med_warm[l]:
          out[name][f"fraction_of_read_{l}"] = _common.sig(read / med_warm[l], 3)
      fa = out[name].get("fraction_of_read_adapter")
      ft = out[name].get("fraction_of_read_tf")
      run.row("hardware", f"{case}, second load vs plain read",
              f"{nbytes / med_warm['adapter'] / 1e9:.2f} GB/s"
              if med_warm["adapter"] else "-", f"read {gbps:.2f} GB/s", None,
              None, (f"adapter at {fa:.1%} of read speed" if fa else "")
              + (f", tf at {ft:.1%}" if ft else "")
              + (f"; read into new memory {nbytes / read_new / 1e9:.2f} GB/s"
                 if read_new else ""))
  # Peak memory for the largest TF2 model.
  name = f"tf2_load_{s.sizes[-1]}"
  if name in samples and not _first_problem(samples[name]["tf"]):
    nbytes = make_models.variable_bytes(s.sizes[-1])
    growth = {l: _common.median(
        r["peak_rss"] - r["rss_before"] for r in _ok(samples[name][l]))
              for l in LOADERS}
    peak = {l: _common.median(r["peak_rss"] for r in _ok(samples[name][l]))
            for l in LOADERS}
    out["memory"] = {"model": name, "variable_bytes": nbytes,
                     "peak_rss": peak, "peak_growth": growth}
    case = f"peak RSS growth, {SIZE_TITLES[s.sizes[-1]]}"
    if growth["adapter"] is None:
      run.unavailable("memory", case,
                      _first_problem(samples[name]["adapter"]) or "no data")
    else:
      ratio = ratio_of(
          (a["peak_rss"] - a["rss_before"], t["peak_rss"] - t["rss_before"])
          for a, t in zip(samples[name]["adapter"], samples[name]["tf"])
          if "peak_rss" in a and "peak_rss" in t)
      run.row("memory", case + " vs tf.saved_model.load",
              _fmt_bytes(growth["adapter"]), _fmt_bytes(growth["tf"]), ratio,
              GOAL, f"{growth['adapter'] / nbytes:.2f}x variable bytes; "
              f"peak RSS {_fmt_bytes(peak['adapter'])} vs "
              f"{_fmt_bytes(peak['tf'])}", key="memory")
  run.data["load"] = out
  run.data["plot"] = plot_series


# Call overhead ---------------------------------------------------------------
def bench_call(run: Runner) -> None:
  s = run.settings
  per = {f: [] for f in s.keras_flavours}
  for r in range(s.repeats):
    for flavour in rotate(s.keras_flavours, r):
      log(f"call overhead ({flavour}) repeat {r + 1}/{s.repeats}")
      env = {"TF_USE_LEGACY_KERAS": "1"} if flavour == "tf_keras" else {}
      per[flavour].append(run.child(
          "bench_call.py", {"path": os.path.join(run.dir, "tf2_call"),
                            "dim": make_models.CALL_DIMS[0],
                            "batches": [1, 256], "blocks": s.call_blocks},
          env=env))
  out = {}
  for flavour, results in per.items():
    good = _ok(results)
    if not good:
      run.unavailable("call", flavour, _first_problem(results) or "no data")
      continue
    for batch in ("1", "256"):
      # Median block per process; the blocks alternate between variants.
      times = {v: [_common.median(g["batches"][batch][v]) if v in
                   g["batches"][batch] else None for g in good]
               for v in ("raw", "adapter", "hub")}
      key = f"{flavour}.batch{batch}"
      out[key] = {v: [_common.sig(t) for t in ts] for v, ts in times.items()}
      case = f"{flavour}, batch {batch}"
      missing = [g["missing"].get("adapter") for g in good
                 if g.get("missing", {}).get("adapter")]
      if missing:
        run.unavailable("call", case, missing[0])
        continue
      ratio = ratio_of(zip(times["adapter"], times["raw"]))
      hub_ratio = ratio_of(zip(times["hub"], times["raw"]))
      out[key]["ratio"] = _common.sig(ratio)
      out[key]["hub_ratio"] = _common.sig(hub_ratio)
      run.row("call", f"KerasLayer in tf.function, {case}",
              _fmt_s(_common.median(times["adapter"])),
              "raw " + _fmt_s(_common.median(times["raw"])), ratio, GOAL,
              f"hub.KerasLayer {hub_ratio:.3f}" if hub_ratio else "",
              key=f"call.{key}")
  run.data["call"] = out


# Fine-tuning -------------------------------------------------------------------
def bench_fit(run: Runner) -> None:
  s = run.settings
  per = {f: [] for f in s.keras_flavours}
  for r in range(s.repeats):
    for flavour in rotate(s.keras_flavours, r):
      log(f"fine-tuning ({flavour}) repeat {r + 1}/{s.repeats}")
      env = {"TF_USE_LEGACY_KERAS": "1"} if flavour == "tf_keras" else {}
      per[flavour].append(run.child(
          "bench_fit.py", {"path": os.path.join(run.dir, "tf2_fit"),
                           "dims": list(make_models.FIT_DIMS),
                           "batch": s.fit_batch, "steps": s.fit_steps,
                           "rounds": s.fit_rounds}, env=env))
  out = {}
  for flavour, results in per.items():
    good = _ok(results)
    if not good:
      run.unavailable("fit", flavour, _first_problem(results) or "no data")
      continue
    rates = {v: [1 / g["step_s"][v] if g["step_s"].get(v) else None
                 for g in good] for v in ("direct", "adapter", "hub")}
    out[flavour] = {v: [_common.sig(x) for x in xs] for v, xs in rates.items()}
    out[flavour]["trainable_weights"] = good[0]["trainable_weights"]
    missing = [g["missing"].get("adapter") for g in good
               if g.get("missing", {}).get("adapter")]
    if missing:
      run.unavailable("fit", flavour, missing[0])
      continue
    # Time per step ratio = direct rate / adapter rate.
    ratio = ratio_of(zip(rates["direct"], rates["adapter"]))
    hub_ratio = ratio_of(zip(rates["direct"], rates["hub"]))
    out[flavour]["ratio"] = _common.sig(ratio)
    out[flavour]["hub_ratio"] = _common.sig(hub_ratio)
    weights = good[0]["trainable_weights"]
    note = (f"trainable weights {weights.get('adapter')} vs "
            f"{weights.get('direct')}")
    if hub_ratio:
      note += f"; hub.KerasLayer {hub_ratio:.3f}"
    run.row("fit", f"Model.fit, KerasLayer(trainable=True), {flavour}",
            f"{_common.median(rates['adapter']):.0f} steps/s",
            f"Keras {_common.median(rates['direct']):.0f} steps/s", ratio,
            GOAL, note, key=f"fit.{flavour}")
  run.data["fit"] = out


# TF1 engine --------------------------------------------------------------------
def bench_tf1(run: Runner) -> None:
  s = run.settings
  if not run.py215:
    run.unavailable("tf1", "hub_adapter.Module vs hub.Module",
                    "no TF 2.15 environment (set HUB_ADAPTER_TF215_PYTHON)")
    return
  per = {x: {"adapter": [], "hub": []} for x in s.tf1_sizes}
  for r in range(s.repeats):
    for i, size in enumerate(s.tf1_sizes):
      path = os.path.join(run.dir, f"tf1_load_{size}")
      warm_page_cache(path)
      log(f"TF1 engine {size} repeat {r + 1}/{s.repeats}")
      for engine in rotate(("adapter", "hub"), r + i):
        per[size][engine].append(run.child(
            "bench_tf1.py", {"path": path, "engine": engine,
                             "dim": make_models.LOAD_INPUT_DIM, "batch": 8,
                             "calls": s.tf1_calls, "blocks": s.tf1_blocks},
            python=run.py215))
  out = {}
  for size, results in per.items():
    case = f"TF1 module {SIZE_TITLES[size]}"
    if _first_problem(results["hub"]):
      run.unavailable("tf1", case, "hub.Module failed: "
                      + _first_problem(results["hub"]))
      continue
    problem = _first_problem(results["adapter"])
    first = {e: [r["build_s"] + r["first_run_s"] if "build_s" in r else None
                 for r in results[e]] for e in ("adapter", "hub")}
    # Steady runs: both engines in every process, blocks interleaved; the
    # median block per engine and process.
    steady_pairs = [(_common.median(r["run_s"]["adapter"]),
                     _common.median(r["run_s"]["hub"]))
                    for e in ("adapter", "hub") for r in results[e]
                    if "adapter" in r.get("run_s", {})
                    and "hub" in r.get("run_s", {})]
    out[size] = {"build_plus_first_run_s": {e: [_common.sig(v) for v in vs]
                                            for e, vs in first.items()},
                 "steady_run_s": [[_common.sig(a), _common.sig(h)]
                                  for a, h in steady_pairs],
                 "build_s": {e: _common.sig(_common.median(
                     r.get("build_s") for r in results[e])) for e in first},
                 "problem": problem}
    if problem:
      run.unavailable("tf1", case, problem)
      continue
    same = all(
        all(abs(x - y) <= 1e-3 * max(1.0, abs(y))
            for x, y in zip(r["first_output"]["adapter"],
                            r["first_output"]["hub"]))
        for e in ("adapter", "hub") for r in results[e]
        if len(r.get("first_output", {})) == 2)
    out[size]["outputs_agree"] = same
    ops = next((r["graph_ops"] for e in ("adapter", "hub") for r in results[e]
                if len(r.get("graph_ops", {})) == 2), None)
    if ops:
      out[size]["run_ops"] = ops
      diff = sorted(set(ops["adapter"].items()) ^ set(ops["hub"].items()))
      ops_note = ("same ops per run" if not diff else
                  "ops per run: adapter " + ", ".join(
                      f"{k}x{v}" for k, v in ops["adapter"].items()
                      if ops["hub"].get(k) != v) + " vs hub " + ", ".join(
                          f"{k}x{v}" for k, v in ops["hub"].items()
                          if ops["adapter"].get(k) != v))
    else:
      ops_note = ""
    ratio = ratio_of(zip(first["adapter"], first["hub"]))
    run.row("tf1", f"{case}: graph build + first session.run",
            _fmt_s(_common.median(first["adapter"])),
            "hub.Module " + _fmt_s(_common.median(first["hub"])), ratio, 1.0,
            f"build {_fmt_s(out[size]['build_s']['adapter'])} vs "
            f"{_fmt_s(out[size]['build_s']['hub'])}"
            + ("" if same else "; OUTPUTS DIFFER"), key=f"tf1.{size}.first")
    ratio = ratio_of(steady_pairs)
    run.row("tf1", f"{case}: steady session.run (batch 8)",
            _fmt_s(_common.median(a for a, _ in steady_pairs)),
            "hub.Module " + _fmt_s(_common.median(h for _, h in steady_pairs)),
            ratio, 1.0, ops_note, key=f"tf1.{size}.steady")
  run.data["tf1"] = out


# Cache and download --------------------------------------------------------------
def bench_cache(run: Runner, server: ArchiveServer) -> None:
  s = run.settings
  name = f"tf2_load_{s.cache_size}"
  folder = os.path.join(run.dir, name)
  archive = os.path.join(run.dir, name + ".tar.gz")
  url = server.url(name)
  resolve = {"adapter": [], "hub": [], "disk": []}
  cached = {k: [] for k in ("adapter_url", "adapter_folder", "hub_url",
                            "hub_folder")}
  for r in range(s.repeats):
    log(f"cache/download {name} repeat {r + 1}/{s.repeats}")
    warm_page_cache(archive)
    warm_page_cache(folder)
    caches = {k: tempfile.mkdtemp(prefix=f"cache_{k}_", dir=run.tmp)
              for k in ("adapter", "hub")}
    target = tempfile.mkdtemp(prefix="extract_", dir=run.tmp)
    try:
      for resolver in rotate(("adapter", "hub", "disk"), r):
        env = ({"TFHUB_CACHE_DIR": caches[resolver]}
               if resolver != "disk" else {})
        resolve[resolver].append(run.child(
            "bench_resolve.py", {"resolver": resolver, "url": url,
                                 "archive": archive, "target": target},
            env=env))
      for key in rotate(cached, r):
        loader, kind = key.split("_")
        handle = url if kind == "url" else folder
        cached[key].append(run.child(
            "bench_load.py", {"handle": handle, "loader": loader,
                              "second": False},
            env={"TFHUB_CACHE_DIR": caches[loader]}))
    finally:
      for path in (*caches.values(), target):
        shutil.rmtree(path, ignore_errors=True)
  if s.profile:
    cache = tempfile.mkdtemp(prefix="cache_profile_", dir=run.tmp)
    env = {"TFHUB_CACHE_DIR": cache}
    run.profile("first download", "bench_resolve.py",
                {"resolver": "adapter", "url": url, "profile": True}, env=env)
    run.profile("second load of URL", "bench_load.py",
                {"handle": url, "loader": "adapter", "profile": True,
                 "second": False}, env=env)
    shutil.rmtree(cache, ignore_errors=True)
  out = {"model": name, "archive_bytes": os.path.getsize(archive)}
  size_case = SIZE_TITLES[s.cache_size]
  # Package import (none for tarfile) plus the resolve: what a script waits
  # for; hub_adapter imports tensorflow_hub lazily, tensorflow_hub up front.
  times = {k: [r["import_s"] + r["resolve_s"] if "resolve_s" in r else None
               for r in v] for k, v in resolve.items()}
  out["resolve_s"] = {k: [_common.sig(x) for x in v] for k, v in times.items()}
  problem = _first_problem(resolve["adapter"])
  disk_problem = _first_problem(resolve["disk"] + resolve["hub"])
  nbytes = out["archive_bytes"]
  if disk_problem:
    run.unavailable("cache", "download", "reference failed: " + disk_problem)
  elif problem:
    run.unavailable("cache", f"first download + extract, {size_case}", problem)
  else:
    disk = _common.median(times["disk"])
    ratio = ratio_of(zip(times["adapter"], times["hub"]))
    run.row("cache", f"import + first download + extract {size_case} vs "
            "hub.resolve",
            _fmt_s(_common.median(times["adapter"])),
            "hub " + _fmt_s(_common.median(times["hub"])), ratio, GOAL,
            f"disk extract {_fmt_s(disk)} "
            f"({nbytes / disk / 1e6:.0f} MB/s); adapter/disk "
            f"{ratio_of(zip(times['adapter'], times['disk'])):.2f}, hub/disk "
            f"{ratio_of(zip(times['hub'], times['disk'])):.2f}",
            key="cache.download")
  # Import of the package plus the first load in a fresh process.
  loads = {k: [r["import_s"] + r["load_s"] if "load_s" in r else None
               for r in v] for k, v in cached.items()}
  out["cached_load_s"] = {k: [_common.sig(x) for x in v]
                          for k, v in loads.items()}
  problem = _first_problem(cached["adapter_url"] + cached["adapter_folder"])
  if _first_problem(cached["hub_url"] + cached["hub_folder"]):
    run.unavailable("cache", "second load", "hub.load failed: "
                    + _first_problem(cached["hub_url"] + cached["hub_folder"]))
  elif problem:
    run.unavailable("cache", f"second load of URL, {size_case}", problem)
  else:
    ratio = ratio_of(zip(loads["adapter_url"], loads["adapter_folder"]))
    hub_ratio = ratio_of(zip(loads["hub_url"], loads["hub_folder"]))
    out["ratio"], out["hub_ratio"] = _common.sig(ratio), _common.sig(hub_ratio)
    run.row("cache", f"import + load of cached URL {size_case} vs local "
            "folder",
            _fmt_s(_common.median(loads["adapter_url"])),
            "folder " + _fmt_s(_common.median(loads["adapter_folder"])),
            ratio, GOAL, f"hub.load URL/folder {hub_ratio:.3f}",
            key="cache.second_load")
  run.data["cache"] = out


# Parallel restore ------------------------------------------------------------
RESTORE_TITLES = {
    "restore_8x64mb": "512 MiB, 8 x 64 MiB",
    "restore_8x128mb": "1 GiB, 8 x 128 MiB",
    "restore_256x2mb": "512 MiB, 256 x 2 MiB",
    make_models.RESTORE_BERT: "BERT-base, 199 tensors, 418 MiB",
    make_models.RESTORE_TF1: "TF1 SavedModel, 512 MiB, 256 x 2 MiB",
}
# Goals of the parallel restore, as ratios (lower is better): at least 1.6x
# faster than TensorFlow for the 256-tensor model, never slower than 0.98x
# for any, within 1.3x of max(rebuild alone, reading the bytes), peak RSS
# within 5% of TensorFlow's.
RESTORE_GOALS = {"restore_256x2mb": round(1 / 1.6, 3)}
RESTORE_GOAL_ANY = round(1 / 0.98, 3)
RESTORE_GOAL_LIMIT = 1.3


def _default_restore_threads() -> int:
  """What hub_adapter.tf2.restore.thread_count() picks on this machine."""
  try:
    cpus = len(os.sched_getaffinity(0))
  except AttributeError:
    cpus = os.cpu_count() or 2
  return min(4, max(2, cpus))


def bench_restore(run: Runner) -> None:
  """hub_adapter.load's parallel restore against TensorFlow's.

  Per model and repeat, each in a fresh process and in rotating order:
  tf.saved_model.load, hub.load, the rebuild alone (skip_checkpoint),
  hub_adapter.load with 1, 2 and 4 read threads and with
  restore="tensorflow" (the facade without the parallel restore), and a
  plain read of the variable files into new memory.
  """
  s = run.settings
  default_threads = _default_restore_threads()
  variants = ["tf", "hub", "structure", "adapter_tf"] + [
      f"adapter:{t}" for t in s.restore_threads] + ["read"]
  samples = {m: {v: [] for v in variants} for m in s.restore_models}
  for r in range(s.repeats):
    for i, name in enumerate(s.restore_models):
      if not run.has_model(name):
        continue
      folder = os.path.join(run.dir, name)
      warm_page_cache(folder)
      log(f"restore {name} repeat {r + 1}/{s.repeats}")
      for variant in rotate(variants, r + i):
        if variant == "read":
          result = run.child("bench_read.py", {"folder": folder})
        elif variant.startswith("adapter:"):
          threads = variant.split(":")[1]
          result = run.child("bench_restore.py",
                             {"variant": "adapter", "path": folder},
                             env={"HUB_ADAPTER_RESTORE_THREADS": threads})
        else:
          result = run.child("bench_restore.py",
                             {"variant": variant, "path": folder})
        samples[name][variant].append(result)
  out = {"default_threads": default_threads}
  main = f"adapter:{default_threads}"
  if main not in variants:
    main = f"adapter:{s.restore_threads[-1]}"
  for name in s.restore_models:
    title = RESTORE_TITLES.get(name, name)
    if not run.has_model(name):
      run.unavailable("restore", title, f"model {name} was not built")
      continue
    per = samples[name]
    problem = _first_problem(sum(per.values(), []))
    if problem:
      run.unavailable("restore", title, problem)
      continue
    times = {v: [r.get("read_new_s") if v == "read" else r.get("load_s")
                 for r in per[v]] for v in variants}
    med = {v: _common.median(times[v]) for v in variants}
    fallbacks = sorted({r["fallback"] for v in variants if v.startswith(
        "adapter") for r in per[v] if r.get("fallback")})
    nbytes = make_models.restore_bytes(name)
    tensors = make_models.restore_tensors(name)
    entry = {
        "variable_bytes": nbytes, "tensors": tensors,
        "load_s": {v: [_common.sig(x) for x in times[v]] for v in variants},
        "median_s": {v: _common.sig(med[v]) for v in variants},
        "fallbacks": fallbacks,
        "peak_rss": {v: [r.get("peak_rss") for r in per[v]]
                     for v in ("tf", main)},
        "peak_growth": {v: [r["peak_rss"] - r["rss_before"] for r in per[v]]
                        for v in ("tf", main)},
    }
    speedups = {}
    for t in s.restore_threads:
      ratio = ratio_of(zip(times[f"adapter:{t}"], times["tf"]))
      entry[f"ratio_vs_tf_threads_{t}"] = _common.sig(ratio)
      speedups[t] = 1 / ratio if ratio else None
    ratio = ratio_of(zip(times[main], times["tf"]))
    hub_ratio = ratio_of(zip(times[main], times["hub"]))
    opt_out = ratio_of(zip(times[main], times["adapter_tf"]))
    entry["ratio_vs_hub"] = _common.sig(hub_ratio)
    entry["ratio_vs_opt_out"] = _common.sig(opt_out)
    goal = RESTORE_GOALS.get(name, RESTORE_GOAL_ANY)
    scaling = ", ".join(f"{t} threads {speedups[t]:.2f}x"
                        for t in s.restore_threads if speedups[t])
    run.row("restore", f"{title}: hub_adapter.load vs tf.saved_model.load",
            _fmt_s(med[main]), _fmt_s(med["tf"]), ratio, goal,
            f"{1 / ratio:.2f}x faster ({scaling}); vs hub.load "
            f"{hub_ratio:.3f}; vs restore=\"tensorflow\" {opt_out:.3f}"
            + ("; FELL BACK: " + fallbacks[0] if fallbacks else ""),
            key=f"restore.{name}.tf")
    limits = [max(a, b) if a and b else None
              for a, b in zip(times["structure"], times["read"])]
    limit_ratio = ratio_of(zip(times[main], limits))
    entry["ratio_vs_limit"] = _common.sig(limit_ratio)
    run.row("restore", f"{title}: hub_adapter.load vs max(rebuild, read)",
            _fmt_s(med[main]), f"max {_fmt_s(_common.median(limits))}",
            limit_ratio, RESTORE_GOAL_LIMIT,
            f"rebuild alone {_fmt_s(med['structure'])}, read into new "
            f"memory {_fmt_s(med['read'])} ({nbytes / med['read'] / 1e9:.2f} "
            f"GB/s); tf.saved_model.load at {nbytes / med['tf'] / 1e9:.2f} "
            f"GB/s, hub_adapter at {nbytes / med[main] / 1e9:.2f} GB/s",
            key=f"restore.{name}.limit")
    memory = ratio_of(zip(entry["peak_rss"][main], entry["peak_rss"]["tf"]))
    growth = {v: _common.median(entry["peak_growth"][v]) for v in ("tf", main)}
    entry["peak_rss_ratio"] = _common.sig(memory)
    run.row("memory", f"{title}: peak RSS vs tf.saved_model.load",
            _fmt_bytes(_common.median(entry["peak_rss"][main])),
            _fmt_bytes(_common.median(entry["peak_rss"]["tf"])), memory,
            GOAL, f"growth during the load {_fmt_bytes(growth[main])} vs "
            f"{_fmt_bytes(growth['tf'])} ({growth[main] / nbytes:.2f}x vs "
            f"{growth['tf'] / nbytes:.2f}x the variable bytes)",
            key=f"restore.{name}.memory")
    out[name] = entry
  run.data["restore"] = out


# Output ------------------------------------------------------------------------
def table(rows) -> str:
  """The summary as a Markdown table (also readable in a terminal)."""
  header = ["section", "case", "hub_adapter", "reference", "ratio",
            "repeats' range", "goal", "verdict", "note"]
  lines = []
  for r in rows:
    verdict = {True: "ok", False: "MISSED", None: ""}[r["met"]]
    if r["adapter"].startswith("unavailable"):
      verdict = "n/a"
    lines.append([r["section"], r["case"], r["adapter"], r["reference"],
                  "" if r["ratio"] is None else f"{r['ratio']:.3f}",
                  "" if not r.get("range") or r["range"][0] == r["range"][1]
                  else f"{r['range'][0]:.3f}-{r['range'][1]:.3f}",
                  "" if r["goal"] is None else f"<= {r['goal']:.2f}",
                  verdict, r["note"]])
  widths = [max(len(header[i]), *(len(l[i]) for l in lines)) if lines
            else len(header[i]) for i in range(len(header))]

  def fmt(cells):
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

  out = [fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
  out += [fmt(l) for l in lines]
  return "\n".join(out)


def _dumps(obj: Any, depth: int = 0, open_levels: int = 2) -> str:
  """JSON with the first levels on their own lines and the rest compact:
  readable in a diff, and a few KB rather than tens."""
  if depth >= open_levels or not isinstance(obj, (dict, list)) or not obj:
    return json.dumps(obj, separators=(",", ":"))
  pad, inner = " " * depth, " " * (depth + 1)
  if isinstance(obj, dict):
    items = [f"{inner}{json.dumps(k)}: {_dumps(v, depth + 1, open_levels)}"
             for k, v in obj.items()]
    return "{\n" + ",\n".join(items) + f"\n{pad}}}"
  items = [inner + _dumps(v, depth + 1, open_levels) for v in obj]
  return "[\n" + ",\n".join(items) + f"\n{pad}]"


def _versions(python: Optional[str]) -> Dict[str, str]:
  if not python:
    return {}
  code = ("import importlib.metadata as m, json\n"
          "out = {}\n"
          "for p in ('tensorflow', 'tensorflow-hub', 'keras', 'tf-keras'):\n"
          "  try: out[p] = m.version(p)\n"
          "  except m.PackageNotFoundError: pass\n"
          "print(json.dumps(out))")
  done = subprocess.run([python, "-c", code], capture_output=True, text=True,
                        check=False)
  try:
    return json.loads(done.stdout)
  except ValueError:
    return {"error": done.stderr[-300:]}


def _git_head() -> str:
  done = subprocess.run(["git", "-C", _common.REPO, "rev-parse", "--short",
                         "HEAD"], capture_output=True, text=True, check=False)
  return done.stdout.strip()


def _default_tf215() -> Optional[str]:
  for candidate in (os.environ.get("HUB_ADAPTER_TF215_PYTHON"),
                    os.path.join(_common.REPO, ".tox", "tf215", "bin",
                                 "python")):
    if candidate and os.path.exists(candidate):
      return candidate
  return None


def parse_args(argv):
  parser = argparse.ArgumentParser(
      description="Benchmark hub_adapter against raw TF and tensorflow_hub.")
  parser.add_argument("--quick", action="store_true",
                      help="1 MiB models only, 1 repeat: a smoke test")
  parser.add_argument("--repeats", type=int, default=None,
                      help="fresh-process repeats per measurement (default 5)")
  parser.add_argument("--sections", default=",".join(SECTIONS),
                      help=f"comma-separated subset of {','.join(SECTIONS)}")
  parser.add_argument("--dir", default=os.environ.get(
      "HUB_ADAPTER_BENCH_DIR",
      os.path.join(tempfile.gettempdir(), "hub_adapter_bench")),
                      help="folder for the generated models (outside the repo)")
  parser.add_argument("--tf215-python", default=_default_tf215(),
                      help="python of the TF 2.15 + tensorflow_hub 0.15 env")
  parser.add_argument("--no-profile", action="store_true",
                      help="skip the untimed cProfile pass of the adapter")
  parser.add_argument("--out", default=None,
                      help="folder for latest.json and load_vs_size.png "
                      "(default benchmarks/results; with --quick, DIR/results)")
  return parser.parse_args(argv)


def _compile_package(tf215_python) -> None:
  """Writes hub_adapter's bytecode, as installing a wheel does.

  The package is installed editable, and with PYTHONDONTWRITEBYTECODE set
  (as on these machines) every fresh process would otherwise compile the
  adapter's sources again, a cost tensorflow and tensorflow_hub (installed
  with their bytecode) never pay.
  """
  env = dict(os.environ)
  env.pop("PYTHONDONTWRITEBYTECODE", None)
  package = os.path.join(_common.REPO, "hub_adapter")
  for python in (sys.executable, tf215_python):
    if python and os.path.exists(python):
      subprocess.run([python, "-m", "compileall", "-q", package], env=env,
                     check=True)


def main(argv=None) -> int:
  args = parse_args(argv if argv is not None else sys.argv[1:])
  settings = Settings.quick() if args.quick else Settings()
  if args.repeats:
    settings.repeats = args.repeats
  settings.profile = not args.no_profile
  sections = [x for x in args.sections.split(",") if x]
  unknown = set(sections) - set(SECTIONS)
  if unknown:
    sys.exit(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
  bench_dir = os.path.abspath(args.dir)
  if bench_dir == _common.REPO or bench_dir.startswith(_common.REPO + os.sep):
    sys.exit(f"--dir must be outside the repository (models reach 1 GiB): "
             f"{bench_dir}")
  out_dir = args.out or (os.path.join(bench_dir, "results") if args.quick
                         else RESULTS)
  os.makedirs(out_dir, exist_ok=True)
  started = time.time()
  load_before = os.getloadavg()
  _compile_package(args.tf215_python)
  run = Runner(settings, bench_dir, sys.executable, args.tf215_python)
  run.build_models(sections)
  server = ArchiveServer(bench_dir) if "cache" in sections else None
  try:
    for section in sections:
      if section == "cache":
        bench_cache(run, server)
      else:
        globals()[f"bench_{section}"](run)
  finally:
    if server:
      server.close()
    shutil.rmtree(run.tmp, ignore_errors=True)
  elapsed = time.time() - started
  text = table(run.rows)
  print(text)
  command = "python benchmarks/run.py" + ("".join(
      " " + a for a in (argv if argv is not None else sys.argv[1:])))
  missed = [r for r in run.rows if r["met"] is False]
  unavailable = [r for r in run.rows if r["adapter"].startswith("unavailable")]
  result = {
      "command": command,
      "date": datetime.datetime.now().isoformat(timespec="seconds"),
      "git_head": _git_head(),
      "elapsed_s": round(elapsed, 1),
      "host": {"cpus": os.cpu_count(), "platform": platform.platform(),
               "python": platform.python_version(),
               "loadavg_before": [round(x, 2) for x in load_before],
               "loadavg_after": [round(x, 2) for x in os.getloadavg()],
               "tf221": _versions(sys.executable),
               "tf215": _versions(args.tf215_python)},
      "settings": dataclasses.asdict(settings),
      "sections": sections,
      "summary": run.rows,
      "missed": [r["key"] or r["case"] for r in missed],
      "unavailable": [f"{r['section']}: {r['case']}" for r in unavailable],
      "data": {k: v for k, v in run.data.items() if k != "plot"},
  }
  # The restore section alone keeps its own file, so that running it does
  # not replace the full run's latest.json.
  json_path = os.path.join(
      out_dir, "restore.json" if sections == ["restore"] else "latest.json")
  with open(json_path, "w") as f:
    f.write(_dumps(result) + "\n")
  paths = [json_path]
  if "plot" in run.data:
    png_path = os.path.join(out_dir, "load_vs_size.png")
    plot.loglog(png_path, run.data["plot"],
                f"Import + first load vs variable size, TF "
                f"{result['host']['tf221'].get('tensorflow', '?')} "
                f"(median of {settings.repeats})",
                "variables (MiB)", "time")
    paths.append(png_path)
  print(f"\n{len(missed)} goal(s) missed, {len(unavailable)} unavailable; "
        f"{elapsed / 60:.1f} min. Wrote " + ", ".join(paths))
  return 0


if __name__ == "__main__":
  sys.exit(main())
