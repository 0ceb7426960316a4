"""What README.md and docs/*.md show runs as written (see tests/docs_blocks.py for how).

A wrong name, a stale flag or a missing import in a ```python or ```bash block fails here,
naming the file and line of the block. Blocks that cannot run carry
``<!-- docs-test: skip (reason) -->`` on the line above their fence.
"""

import json
import os
import subprocess
import sys

import docs_blocks
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def test_blocks_parse_and_markers_have_reasons():
    blocks = docs_blocks.runnable_blocks()
    assert any(b.path == "README.md" and b.lang == "python" and b.skip is None for b in blocks)
    for block in blocks:
        if block.skip is None and block.lang == "bash":
            assert docs_blocks.commands_of(block), f"{block.where}: a bash block with no command"


def test_a_marker_without_reason_is_refused(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.md").write_text("text\n")
    (tmp_path / "README.md").write_text("<!-- docs-test: skip -->\n```bash\nnascell-search\n```\n")
    with pytest.raises(docs_blocks.DocsTestError, match="skip \\(why it cannot run\\)"):
        docs_blocks.runnable_blocks(str(tmp_path))
    (tmp_path / "README.md").write_text(
        "<!-- docs-test: skip (needs a Ray cluster) -->\n\n```bash\nray status\n```\n"
        "```bash\nnascell-search --num_trials=50 && nascell-export --run_dir=r  # hi\n```\n")
    skipped, ran = docs_blocks.runnable_blocks(str(tmp_path))
    assert skipped.skip == "needs a Ray cluster" and ran.skip is None
    assert docs_blocks.commands_of(ran) == [["nascell-search", "--num_trials=50"],
                                           ["nascell-export", "--run_dir=r"]]
    with pytest.raises(docs_blocks.DocsTestError, match="`ray status` is not a nascell binary"):
        docs_blocks.commands_of(skipped)


def test_budgets_are_substituted():
    search = docs_blocks.budgeted(["nascell-search", "--num_trials=50", "--run_dir=r"])
    assert search[:2] == ["nascell-search", "--run_dir=r"] and "--num_trials=1" in search
    assert "--child_epochs=1" in search and "--child_units=8" in search
    image = docs_blocks.budgeted(["nascell-search", "--image_dir=p/"])
    assert "--child_subset=40" in image and "--child_units=8" not in image
    table = docs_blocks.budgeted(["nascell-search", "--space=nasbench201"])
    assert not any(a.startswith("--child_") for a in table)
    enas = docs_blocks.budgeted(["nascell-search", "--strategy=enas", "--enas_option=epochs=2"])
    assert "--enas_option=epochs=2" not in enas and "--enas_option=epochs=1" in enas
    assert docs_blocks.budgeted_python("run(x, num_trials=20, epochs=3)") == \
        "run(x, num_trials=1, epochs=1)"
    assert docs_blocks.budgeted_python("for _ in range(10):") == "for _ in range(1):"


@pytest.mark.slow
def test_every_doc_block_runs(tmp_path):
    steps, skipped = docs_blocks.plan(run_all=os.environ.get("NASCELL_DOCS_RUN") == "1")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"steps": steps, "timeout_s": docs_blocks.COMMAND_TIMEOUT_S}))
    work = tmp_path / "work"
    work.mkdir()
    results_path = tmp_path / "results.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join(
        [HERE] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    for name in ("NASCELL_NB201_CSV", "NASCELL_DATA_DIR"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, os.path.join(HERE, "docs_driver.py"), str(plan),
                           str(results_path)], cwd=str(work), env=env, capture_output=True,
                          text=True, timeout=60 + len(steps) * docs_blocks.COMMAND_TIMEOUT_S)
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    assert proc.returncode == 0 and len(results) == len(steps), (
        f"the docs driver stopped after {len(results)} of {len(steps)} steps:\n"
        f"{proc.stderr[-3000:]}")
    failed = [r for r in results if not r["ok"]]
    report = "\n\n".join(f"{r['where']} {r['what'] or '(python block)'}:\n{r['error']}"
                         for r in failed)
    assert not failed, f"{len(failed)} doc block step(s) failed:\n\n{report}"
