"""The SQLite trial store: rows, events, finality, crash safety, corrupt files."""

import math
import subprocess
import sys
import textwrap

import pytest

from nascell.search.core.trial import Trial, TrialStatus
from nascell.search.rundir.store import StoreError, TrialStore
from nascell.spec import NAS_CELL_SPEC


def _trial(i, spec=None):
    return Trial(i, {"a": i % 3, "skips": [0, 1]}, spec if spec is not None else f"s{i}",
                 meta={"tokens": [1, 2, 3]})


def test_lifecycle_and_events(tmp_path):
    store = TrialStore(str(tmp_path / "t.sqlite"))
    store.add([_trial(0), _trial(1, NAS_CELL_SPEC)])
    assert store.counts()["pending"] == 2
    store.mark_running(0)
    t = store.get(0)
    assert t.status == TrialStatus.RUNNING and t.decisions == {"a": 0, "skips": [0, 1]}
    t.status, t.reward, t.metrics, t.timings = TrialStatus.DONE, 0.5, {"ppl": 80.0}, {"e": 1.0}
    store.finish(t)
    back = store.get(0)
    assert back.reward == 0.5 and back.metrics == {"ppl": 80.0}
    assert back.meta == {"tokens": [1, 2, 3]}
    assert [e["status"] for e in store.events(0)] == ["pending", "running", "done"]
    # A registered spec kind comes back as the spec object.
    assert store.get(1).spec == NAS_CELL_SPEC
    assert store.best(1)[0].trial_id == 0
    assert [t.trial_id for t in store.unfinished()] == [1]
    store.close()


def test_finished_trials_are_final(tmp_path):
    store = TrialStore(str(tmp_path / "t.sqlite"))
    store.add([_trial(0)])
    with pytest.raises(StoreError, match="already in"):
        store.add([_trial(0)])
    store.mark_running(0)
    t = store.get(0)
    t.status, t.reward, t.error = TrialStatus.FAILED, 0.0, "boom"
    store.finish(t)
    t.status, t.reward = TrialStatus.DONE, 1.0
    with pytest.raises(StoreError, match="already finished"):
        store.finish(t)
    with pytest.raises(StoreError, match="cannot run again"):
        store.mark_running(0)
    assert store.get(0).status == TrialStatus.FAILED and store.get(0).error == "boom"
    t2 = _trial(1)
    store.add([t2])
    t2.status, t2.reward = TrialStatus.DONE, math.nan
    with pytest.raises(ValueError, match="not finite"):
        store.finish(t2)


def test_running_twice_counts_attempts(tmp_path):
    store = TrialStore(str(tmp_path / "t.sqlite"))
    store.add([_trial(0)])
    store.mark_running(0)
    store.mark_running(0)  # re-run after a crash
    assert store.attempts(0) == 2


def test_untold_follows_generations(tmp_path):
    store = TrialStore(str(tmp_path / "t.sqlite"))
    store.add([_trial(i) for i in range(4)])
    for i in range(4):
        store.mark_running(i)
        t = store.get(i)
        t.status, t.reward = TrialStatus.DONE, float(i)
        store.finish(t)
    store.mark_told([0, 1], 1)
    store.mark_told([2], 2)
    assert [t.trial_id for t in store.untold()] == [3]
    assert [t.trial_id for t in store.untold(after_generation=1)] == [2, 3]


@pytest.mark.slow
def test_committed_finish_survives_kill(tmp_path):
    """A process that finishes a trial and is then killed -9 loses nothing."""
    path = str(tmp_path / "t.sqlite")
    code = textwrap.dedent(f"""
        import os
        from nascell.search.rundir.store import TrialStore
        from nascell.search.core.trial import Trial, TrialStatus
        s = TrialStore({path!r})
        s.add([Trial(0, {{"a": 1}}, "x"), Trial(1, {{"a": 2}}, "y")])
        s.mark_running(0)
        t = s.get(0); t.status = TrialStatus.DONE; t.reward = 0.75
        s.finish(t)
        s.mark_running(1)
        os.kill(os.getpid(), 9)
    """)
    # cwd=tmp_path: `python -c` puts the cwd on sys.path; keep the checkout's nascell/ off it.
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=tmp_path)
    assert proc.returncode == -9, proc.stderr
    store = TrialStore(path)
    assert store.get(0).reward == 0.75 and store.get(0).status == TrialStatus.DONE
    assert store.get(1).status == TrialStatus.RUNNING


def test_corrupt_file_is_named_and_untouched(tmp_path):
    path = tmp_path / "trials.sqlite"
    garbage = b"this is not a database" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match=r"trials.sqlite is not a readable trial store.*--run_dir"):
        TrialStore(str(path))
    assert path.read_bytes() == garbage


def test_readonly_open_while_writer_holds_it(tmp_path):
    path = str(tmp_path / "t.sqlite")
    writer = TrialStore(path)
    writer.add([_trial(0)])
    reader = TrialStore(path, readonly=True)
    assert reader.counts()["pending"] == 1
    with pytest.raises(StoreError, match="read-only"):
        reader.mark_running(0)
    with pytest.raises(StoreError, match="does not exist"):
        TrialStore(str(tmp_path / "none.sqlite"), readonly=True)
