"""The code blocks of README.md and docs/*.md, and how tests/test_docs.py runs them.

Every fenced ```python and ```bash block is run, in document order, in one temporary folder
that `tests/docs_driver.py` first fills with the placeholders the blocks name (a tiny corpus,
image folder, CIFAR-10 subset, NAS-Bench-201 table, spec files; Python names such as
``x_train`` and ``my_train_and_score``). Other fences (json, plain) are not code to run.

A block that cannot run here carries, on the line just before its fence, an HTML comment that
rendered Markdown does not show, with the reason::

    <!-- docs-test: skip (needs a Ray cluster) -->

A marker without a reason, or with another verb, fails the test.

Bash blocks may hold only the nascell binaries (``nascell-search``, ``nascell-train``,
``nascell-export``); comments, ``\\`` continuations and ``&&`` chains are understood.

A command whose output a later Python block reads (its ``--run_dir`` or ``--out`` appears in
that block) runs for real in the driver's process (`main` of the binary after its flags are
parsed), at a tiny budget, by the substitutions of the tables below: an existing flag of that
name is replaced, a missing one appended (appended flags come last, so they win over a
``--flagfile``). Every other command is checked, not run, to keep the suite's time small: its
flags are parsed by the binary (an unknown or stale flag fails), and nascell-search's `resolve`
checks them all (names of spaces, strategies, evaluators; files given; combinations) as it does
before any work. With ``NASCELL_DOCS_RUN=1`` in the environment every command runs (minutes).
Python blocks always run, with `PYTHON_BUDGETS`: keyword arguments rewritten in their text.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARIES = ("nascell-search", "nascell-train", "nascell-export")
MARKER = re.compile(r"^\s*<!--\s*docs-test:(.*?)-->\s*$")
FENCE = re.compile(r"^```\s*([A-Za-z0-9_+-]*)\s*$")

# --- the substitution of budgets ------------------------------------------------------------------
# nascell-search, every search: one trial.
SEARCH_BUDGET = {"num_trials": "1"}
# nascell-search with trained children (not a tabular space, not ENAS): the smallest child.
CHILD_BUDGET = {"child_epochs": "1", "child_steps_per_epoch": "2", "child_max_valid_steps": "1",
                "child_batch_size": "4"}
SEQUENCE_CHILD_BUDGET = {"child_units": "8", "child_seq_len": "5"}
IMAGE_CHILD_BUDGET = {"child_subset": "40"}
# nascell-search --strategy=enas: one short epoch of a small supernet (--enas_option, appended).
ENAS_BUDGET = {"epochs": "1", "shared_steps": "2", "controller_steps": "1",
               "controller_batch": "1", "derive_samples": "1", "derive_batches": "1",
               "batch_size": "4"}
ENAS_SEQUENCE_BUDGET = {"units": "8", "seq_len": "5", "max_train_tokens": "400",
                        "max_valid_tokens": "200"}
ENAS_IMAGE_BUDGET = {"filters": "4", "num_cells": "1"}
# nascell-train: one epoch per grid point and for the final training, of the smallest child
# (the kind's child flags, by the evaluator in --run_dir's config.json).
TRAIN_BUDGET = {"epochs": "1", "grid_epochs": "1", "lr_grid": "1.0",
                "child_steps_per_epoch": "2", "child_max_valid_steps": "1",
                "child_batch_size": "4"}
# Python blocks: keyword arguments rewritten where the text says them, and loops
# ``for ... in range(N)`` run once.
PYTHON_BUDGETS = {"num_trials": "1", "epochs": "1", "max_trials": "2"}
# Each binary's whole run (a tiny search with its export) has this long.
COMMAND_TIMEOUT_S = 120


@dataclasses.dataclass
class Block:
    """One fenced block: where it is, its language, its text, and its skip reason if any."""

    path: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    skip: Optional[str] = None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


class DocsTestError(ValueError):
    """A docs-test marker or a bash block the test cannot understand."""


def doc_files(root: str = ROOT) -> List[str]:
    """README.md and docs/*.md, relative to ``root``."""
    docs = sorted(f for f in os.listdir(os.path.join(root, "docs")) if f.endswith(".md"))
    return ["README.md"] + [os.path.join("docs", f) for f in docs]


def blocks_of(path: str, root: str = ROOT) -> List[Block]:
    """The fenced blocks of the Markdown file ``path``; raises `DocsTestError` on a marker
    without a reason or with an unknown verb."""
    with open(os.path.join(root, path), encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks: List[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, lang = i, fence.group(1).lower()
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence
        skip = _marker(lines, start, f"{path}:{start + 1}")
        blocks.append(Block(path, start + 1, lang, "\n".join(body) + "\n", skip))
    return blocks


def _marker(lines: List[str], fence: int, where: str) -> Optional[str]:
    """The skip reason of the block whose fence is line ``fence`` (0-based), from the nearest
    non-blank line above it."""
    j = fence - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    match = MARKER.match(lines[j]) if j >= 0 else None
    if not match:
        return None
    directive = match.group(1).strip()
    verb = re.match(r"skip\s*\((.*)\)\s*$", directive)
    if not verb or not verb.group(1).strip():
        raise DocsTestError(
            f"{where}: the docs-test marker must read <!-- docs-test: skip (why it cannot run) "
            f"-->. Received: <!-- docs-test:{match.group(1)}-->")
    return verb.group(1).strip()


def runnable_blocks(root: str = ROOT) -> List[Block]:
    """Every python and bash block of the docs, in order (skipped ones included)."""
    return [b for path in doc_files(root) for b in blocks_of(path, root)
            if b.lang in ("python", "bash")]


# --- bash ---------------------------------------------------------------------------------------


def commands_of(block: Block) -> List[List[str]]:
    """The argv of every command of a bash block: comments dropped, continuations joined,
    ``&&`` chains split. Raises `DocsTestError` for a command that is not a nascell binary."""
    logical, pending = [], ""
    for raw in block.text.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        logical.append(line)
    commands = []
    for line in logical:
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            argv, words = words[:cut], words[cut + 1:]
            if not argv:
                continue
            if argv[0] not in BINARIES:
                raise DocsTestError(
                    f"{block.where}: `{' '.join(argv)}` is not a nascell binary the docs test "
                    f"can run; mark the block <!-- docs-test: skip (the reason) --> on the line "
                    f"above its fence")
            commands.append(argv)
    return commands


def _flag(argv: List[str], name: str) -> Optional[str]:
    for a in argv:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def _set(argv: List[str], values: Dict[str, str]) -> List[str]:
    out = [a for a in argv if a.split("=", 1)[0].lstrip("-") not in values]
    return out + [f"--{k}={v}" for k, v in values.items()]


def _flagfile_text(argv: List[str], cwd: str) -> str:
    path = _flag(argv, "flagfile")
    if not path:
        return ""
    full = path if os.path.isabs(path) else os.path.join(cwd, path)
    with open(full, encoding="utf-8") as f:
        return f.read()


def budgeted(argv: List[str], cwd: str = ROOT) -> List[str]:
    """``argv`` with the budgets of the module docstring substituted."""
    binary, text = argv[0], " ".join(argv) + "\n" + _flagfile_text(argv, cwd)
    if binary == "nascell-export":
        return list(argv)
    if binary == "nascell-train":
        config = os.path.join(cwd, _flag(argv, "run_dir") or "", "config.json")
        evaluator = ""
        if os.path.exists(config):
            with open(config, encoding="utf-8") as f:
                evaluator = (json.load(f).get("evaluator") or {}).get("name", "")
        extra = (SEQUENCE_CHILD_BUDGET if evaluator == "rnn_lm" else IMAGE_CHILD_BUDGET
                 if evaluator == "conv_classifier" else {})
        return _set(argv, dict(TRAIN_BUDGET, **extra))
    argv = _set(argv, SEARCH_BUDGET)
    image = any(k in text for k in ("--dataset=cifar10", "--cifar_npz", "--image_dir",
                                    "--tfds_name", "--space=conv", "--space=enas_conv",
                                    "--space=enas_macro"))
    if "--strategy=enas" in text:
        budget = dict(ENAS_BUDGET, **(ENAS_IMAGE_BUDGET if image else ENAS_SEQUENCE_BUDGET))
        kept = [a for a in argv if not (a.startswith("--enas_option=")
                                        and a.split("=")[1] in budget)]
        return kept + [f"--enas_option={k}={v}" for k, v in budget.items()]
    if any(k in text for k in ("nasbench201", "synthetic_pairwise")):
        return argv
    return _set(argv, dict(CHILD_BUDGET, **(IMAGE_CHILD_BUDGET if image
                                            else SEQUENCE_CHILD_BUDGET)))


# --- python ------------------------------------------------------------------------------------


def budgeted_python(text: str) -> str:
    """``text`` with the keyword arguments of `PYTHON_BUDGETS` set to their tiny values."""
    for name, value in PYTHON_BUDGETS.items():
        text = re.sub(rf"\b{name}=\d+", f"{name}={value}", text)
    return re.sub(r"\bin range\(\d+\)", "in range(1)", text)


def _outputs(argv: List[str]) -> List[str]:
    return [v.rstrip("/") for v in (_flag(argv, "run_dir"), _flag(argv, "out")) if v]


def plan(root: str = ROOT, run_all: bool = False) -> Tuple[List[dict], List[Block]]:
    """The steps the driver takes (``{"where", "kind": "python"|"command", "code"|"argv",
    "run"}``; a command's budget is substituted by the driver, once earlier steps have run),
    and the blocks skipped. ``run``: run the command (``run_all``, or a later Python block reads
    what it writes), else only check its flags."""
    blocks = runnable_blocks(root)
    steps, skipped = [], []
    for k, block in enumerate(blocks):
        later_python = "".join(b.text for b in blocks[k + 1:]
                               if b.lang == "python" and b.skip is None)
        if block.skip is not None:
            skipped.append(block)
        elif block.lang == "python":
            steps.append({"where": block.where, "kind": "python",
                          "code": budgeted_python(block.text)})
        else:
            for argv in commands_of(block):
                run = run_all or any(o in later_python for o in _outputs(argv))
                steps.append({"where": block.where, "kind": "command", "argv": argv,
                              "run": run})
    return steps, skipped
