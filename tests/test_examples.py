"""The examples in examples/ run as documented and print what they claim."""
import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _run(script, *args):
  proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, script),
                         *args], capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout


def _losses(out):
  first, last = re.search(r"loss ([\d.]+) -> ([\d.]+)", out).groups()
  return float(first), float(last)


def test_finetune_keras(shared_fixtures):
  out = _run("finetune_keras.py", shared_fixtures.path("tf2_image_bn_reusable"))
  first, last = _losses(out)
  assert last < first
  assert "regularization losses in model.losses: 2" in out


def test_finetune_tf1_graph(shared_fixtures):
  out = _run("finetune_tf1_graph.py",
             shared_fixtures.path("tf1_image_feature_vector"))
  first, last = _losses(out)
  assert last < first
  assert "update ops: 2, regularization losses: 2" in out


def test_create_tf1_module(tmp_path):
  out = _run("create_tf1_module.py", str(tmp_path / "module"))
  assert "signatures: ['default']" in out
  assert os.path.exists(tmp_path / "module" / "tfhub_module.pb")


# -- README "Real models": its two code blocks are these examples' code -------

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _marked_block(script, title):
  """The code between an example's README markers, dedented."""
  import textwrap  # pylint: disable=g-import-not-at-top
  with open(os.path.join(EXAMPLES, script)) as f:
    text = f.read()
  start = text.index(f"# --- README: Real models / {title} ---")
  start = text.index("\n", start) + 1
  end = text.index("# --- end ---", start)
  return textwrap.dedent(text[start:end].rstrip(" ")).rstrip() + "\n"


def _real_models_section():
  with open(README) as f:
    text = f.read()
  start = text.index("\n## Real models\n")
  return text[start:text.index("\n## ", start + 1)]


@pytest.mark.parametrize("script,title", [
    ("bert_classifier.py", "BERT"), ("convert_tf1_module.py", "TF1 module")])
def test_readme_real_models_blocks_are_the_examples(script, title):
  block = _marked_block(script, title)
  assert f"```python\n{block}```" in _real_models_section()


def test_bert_classifier(shared_fixtures):
  out = _run("bert_classifier.py", shared_fixtures.path("tf2_bert_preprocess"),
             shared_fixtures.path("tf2_bert_encoder"))
  first, last = _losses(out)
  assert last < first
  assert "encoder weights: 17 trainable" in out
  assert "tokenize: [[[5], [7, 18], [16, 19]]]" in out
  assert ("bert_pack_inputs: ['input_mask', 'input_type_ids', "
          "'input_word_ids']") in out


def test_convert_tf1_module(shared_fixtures, tmp_path):
  out = _run("convert_tf1_module.py", shared_fixtures.path("tf1_refvar_lstm"),
             str(tmp_path / "converted"))
  assert "converted outputs equal the module's: True" in out
  first, last = _losses(out)
  assert last < first
  assert "trainable variables: 3" in out
