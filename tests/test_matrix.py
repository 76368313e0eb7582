"""``hub-adapter matrix`` runs all 12 cells live and agrees with the table."""
import json
import os
import subprocess
import sys

import pytest

from hub_adapter import matrix
from hub_adapter import support

from official_table import OFFICIAL  # pylint: disable=wrong-import-order


@pytest.fixture(scope="module")
def live_results(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("matrix"))
  proc = subprocess.run(
      [os.path.join(os.path.dirname(sys.executable), "hub-adapter"),
       "matrix", "--json", "--keep", root],
      capture_output=True, text=True, timeout=900, check=False)
  return proc, root


def test_matrix_runs_every_cell_and_all_agree(live_results):
  proc, _ = live_results
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  rows = json.loads(proc.stdout)
  assert len(rows) == 12
  keys = {(r["format"], r["operation"], r["mode"]) for r in rows}
  assert keys == {(f.value, o.value, m.value) for f, o, m in support.TABLE}
  for row in rows:
    assert row["verdict"] == "agree", row
    official = OFFICIAL[(row["format"], row["operation"], row["mode"])]
    assert row["official"] == official
    assert row["outcome"] == ("worked" if official else "refused"), row


def test_unsupported_cells_quote_the_table(live_results):
  proc, _ = live_results
  for row in json.loads(proc.stdout):
    if row["outcome"] == "refused":
      assert row["detail"].startswith("UnsupportedOperationError: Cannot ")


def test_matrix_leaves_the_models_it_made(live_results):
  _, root = live_results
  made = sorted(os.listdir(root))
  assert "tf1_hub_module" in made
  assert os.path.exists(os.path.join(root, "tf1_hub_module", "tfhub_module.pb"))
  assert {"tf2_saved_model_tf1_compat", "tf2_saved_model_tf2"} <= set(made)


def _result(fmt, op, mode, outcome, works_when=None):
  if works_when is None:  # What the live matrix checks for such cells.
    cell = support.lookup(fmt, op, mode)
    works_when = "worked: checked" if getattr(cell, "works_when", "") else ""
  return matrix.CellResult(fmt, op, mode, outcome, "detail", works_when)


def test_verdicts():
  assert _result("tf1_hub", "load", "tf2", "worked").verdict == "agree"
  assert _result("tf1_hub", "load", "tf2", "refused").verdict == "DISAGREE"
  assert _result("tf1_hub", "create", "tf2", "refused").verdict == "agree"
  assert _result("tf1_hub", "create", "tf2", "worked").verdict == "DISAGREE"
  assert _result("tf1_hub", "create", "tf2", "failed").verdict == "DISAGREE"
  assert _result("tf1_hub", "load", "tf2", "pending").verdict == "pending"


def test_render_has_a_row_per_cell_and_a_summary():
  results = [_result(f.value, o.value, m.value,
                     "worked" if support.OFFICIAL[(f, o, m)] else "refused")
             for f, o, m in support.TABLE]
  results[0].outcome = "failed"
  text = matrix.render(results)
  lines = text.splitlines()
  assert lines[0].split(" | ")[0].strip() == "format"
  assert sum("TF1 Hub" in l for l in lines) == 6 + 1  # The rows, one note.
  assert sum("TF2 SavedModel" in l for l in lines) == 6
  assert lines[-1] == "11 agree, 1 disagree, 0 pending"


def test_tf1_creation_in_tf2_is_reported_with_what_works(live_results):
  # Officially closed; observed: the 0.15 way (graph block) works, while
  # Module(spec) outside any graph is refused with the table's error.
  proc, root = live_results
  row = next(r for r in json.loads(proc.stdout)
             if (r["format"], r["operation"], r["mode"])
             == ("tf1_hub", "create", "tf2"))
  assert row["official"] is False and row["verdict"] == "agree"
  assert row["outcome"] == "refused"
  assert "outside any graph" in row["detail"]
  assert row["works_when"].startswith("worked: "), row
  assert os.path.exists(
      os.path.join(root, "tf1_hub_module_from_tf2", "tfhub_module.pb"))


def test_a_closed_cell_that_works_in_part_needs_both_observations():
  key = ("tf1_hub", "create", "tf2")
  assert support.lookup(*key).works_when  # Data in the support table.
  assert _result(*key, "refused").verdict == "agree"
  assert _result(*key, "refused", works_when="").verdict == "DISAGREE"
  assert _result(*key, "refused",
                 works_when="failed: ValueError: x").verdict == "DISAGREE"
  assert _result(*key, "worked").verdict == "DISAGREE"
  text = matrix.render([_result(*key, "refused")])
  assert ("official: no; observed: works when the module is built and "
          "exported in a graph, as in tensorflow_hub 0.15") in text
  assert "not supported | works when the module is built" in text
  failed = matrix.render([_result(*key, "refused", works_when="failed: E")])
  assert "FAILED when the module is built" in failed
