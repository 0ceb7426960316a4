"""nascell-search: bad flags, kill -9 and resume, refused reuse, corrupt run dirs, NB201."""

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from nascell.search.rundir.store import TrialStore

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLI = [sys.executable, "-m", "nascell.search.bin.search"]
TOY = ["--import=runs_helpers", "--space=toy", "--strategy=toy_random", "--evaluator=toy_slow",
       "--noexport"]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([HERE] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("NASCELL_NB201_CSV", None)
    env.pop("NASCELL_DATA_DIR", None)
    env.update(extra)
    return env


def _cli(args, timeout=240, cwd=HERE, **env):
    return subprocess.run(CLI + args, capture_output=True, text=True, timeout=timeout,
                          env=_env(**env), cwd=str(cwd))


# Each case: flags, and a piece of the one-line error it must give.
BAD_FLAGS = {
    "trials": (["--num_trials=0"], "Argument `--num_trials` must be > 0. Received: --num_trials=0"),
    "m": (["--m=-2"], "Argument `--m` must be > 0. Received: --m=-2"),
    "space": (["--space=transformer"], "--space=transformer: unknown search space; known:"),
    "strategy": (["--strategy=annealing"], "--strategy=annealing: unknown strategy; known:"),
    "evaluator": (["--strategy=random", "--space=nasbench201", "--evaluator=oracle"],
                  "--evaluator=oracle: unknown evaluator"),
    "pair": (["--strategy=random", "--space=nasbench201", "--evaluator=rnn_lm"],
             "--evaluator=rnn_lm cannot evaluate --space=nasbench201"),
    "dataset": (["--dataset=cifar10", "--space=rnn_cell"],
                "--space=rnn_cell searches ptb architectures, not --dataset=cifar10"),
    "csv_missing": (["--strategy=random", "--space=nasbench201", "--nb201_csv=/no/such/nb201.csv"],
                    "--nb201_csv=/no/such/nb201.csv: no such file"),
    "csv_absent": (["--strategy=random", "--space=nasbench201"],
                   "needs its table: pass --nb201_csv"),
    "controller": (["--strategy=random", "--lr=0.1"], "--lr sets the controller"),
    "ls_order": (["--strategy=random", "--local_search_order=predictor"],
                 "--local_search_order sets the local_search strategy"),
    "synthetic": (["--space=synthetic_pairwise", "--strategy=local_search",
                   "--local_search_order=predictor"], "OK"),
    "executor": (TOY + ["--executor=slurm"], "--executor=slurm: unknown executor"),
    "workers": (TOY + ["--workers=0"], "Argument `--workers` must be >= 1 (0 only with "
                "--executor=ray). Received: --workers=0"),
    "ray_address": (TOY + ["--ray_address=auto"], "--ray_address needs --executor=ray"),
    "good": (TOY, "OK"),
    "default": ([], "OK"),  # recurrent cells on PTB, trained children (nothing runs here)
    "child": (["--child_epochs=0"],
              "Argument `--child_epochs` must be >= 1. Received: --child_epochs=0"),
    "child_foreign": (TOY + ["--child_epochs=2"], "--child_epochs configure the rnn_lm"),
    "positional": (["ptb"], "unexpected arguments ['ptb']"),
    "import": (["--import=no_such_module_xyz"], "--import=no_such_module_xyz: cannot import"),
    "type": (["--num_trials=many"], "flag --num_trials=many"),
}


@pytest.mark.slow
def test_every_bad_flag_gets_its_message(tmp_path):
    # One process parses every case in turn (absl flags are process-global).
    script = textwrap.dedent("""
        import io, json, sys
        from absl import app, flags
        from nascell.search.bin import search
        cases = json.loads(sys.argv[1])
        out = {}
        for name, (argv, _) in cases.items():
            flags.FLAGS.unparse_flags()
            try:
                rest = flags.FLAGS(["nascell-search"] + argv)
                search.resolve(rest)
                out[name] = "OK"
            except app.UsageError as e:
                out[name] = str(e)
            except flags.Error as e:
                out[name] = str(e)
        # What main() (the binary) prints for a bad flag, and its exit status.
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["nascell-search", "--num_trials=0", "--run_dir=never"])
        sys.stderr, err = io.StringIO(), sys.stderr
        try:
            search.main(["nascell-search"])
        except SystemExit as e:
            out["exit"] = [e.code, sys.stderr.getvalue()]
        sys.stderr = err
        print(json.dumps(out))
    """)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{truncated")
    npz = tmp_path / "cifar.npz"
    npz.write_bytes(b"")  # resolve() checks the file is there; nothing is loaded
    enas = ["--strategy=enas"]
    cases = dict(BAD_FLAGS, corrupt=(TOY + [f"--run_dir={corrupt}"],
                                     f"{corrupt}/config.json is unreadable"),
                 # ENAS is an ordinary strategy: the same flags, the same checks
                 enas_conv_npz=(enas + ["--space=enas_conv", f"--cifar_npz={npz}"], "OK"),
                 enas_macro=(enas + ["--space=enas_macro", f"--cifar_npz={npz}",
                                     "--enas_option=num_layers=6", "--child_subset=500"], "OK"),
                 enas_rnn=(enas + ["--enas_option=epochs=2", "--child_dataset=ptb_char"], "OK"),
                 enas_npz_on_cells=(enas + ["--space=enas_rnn", f"--cifar_npz={npz}"],
                                    "--cifar_npz is for the image spaces"),
                 enas_workers=(enas + ["--workers=2"],
                               "--evaluator=supernet evaluates in the search's own process"),
                 enas_option=(enas + ["--enas_option=epoch=3"],
                              ("Argument `--enas_option` must be KEY=VALUE with KEY one of [",
                               "Received: --enas_option='epoch=3'")),
                 enas_option_type=(enas + ["--enas_option=epochs=two"],
                                   "'two' is not a valid epochs"),
                 enas_child=(enas + ["--child_epochs=2"], "--child_epochs configure trained"),
                 enas_option_elsewhere=(["--enas_option=epochs=2"],
                                        "--enas_option sets an ENAS search"),
                 supernet_alone=(["--space=enas_rnn", "--evaluator=supernet"],
                                 "--evaluator=supernet scores with the shared weights"),
                 failures=(TOY + ["--max_consecutive_failures=-1"],
                           "Argument `--max_consecutive_failures` must be >= 0"))
    proc = subprocess.run([sys.executable, "-c", script, json.dumps(cases)],
                          capture_output=True, text=True, env=_env(), timeout=240,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (_, message) in cases.items():
        for piece in message if isinstance(message, tuple) else (message,):
            assert piece in got[name], (name, got[name])
    assert "pick a new --run_dir" in got["corrupt"]
    assert (corrupt / "config.json").read_text() == "{truncated"
    # The binary: exit status 1, the message on one line, no work done.
    code, stderr = got["exit"]
    assert code == 1 and stderr.splitlines() == [
        "nascell-search: Argument `--num_trials` must be > 0. Received: --num_trials=0",
        "Pass --helpshort or --helpfull to see help on flags."]
    assert not (tmp_path / "never").exists()
    assert not (tmp_path / "never").exists()


def _wait_for_done(run_dir, proc, at_least, limit=120):
    path = os.path.join(run_dir, "trials.sqlite")
    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(path):
            try:
                if TrialStore(path, readonly=True).counts()["done"] >= at_least:
                    return
            except Exception:  # still being created
                pass
        time.sleep(0.05)
    raise AssertionError(f"the search never reached {at_least} trials: "
                         f"{proc.communicate()[1][-3000:] if proc.poll() is not None else ''}")


@pytest.mark.slow
def test_a_search_whose_every_trial_failed_exits_non_zero(tmp_path):
    """Fewer trials than the failure guard's limit, all failed: the summary says so, the exit
    status is non-zero with the first error, and no reward plot of failures alone is drawn."""
    run_dir = str(tmp_path / "run")
    proc = _cli(TOY + [f"--run_dir={run_dir}", "--num_trials=3", "--noprogress"],
                NASCELL_TEST_FAIL="all")
    assert proc.returncode != 0, proc.stdout + proc.stderr[-3000:]
    assert f"3 trials in {run_dir}: every one failed" in proc.stdout
    assert "best architecture" not in proc.stdout and "reward plot" not in proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("nascell-search: every one of the 3 trials failed"), last
    assert "toy failure for" in last and f"{run_dir}/trials.sqlite" in last
    assert not os.path.exists(os.path.join(run_dir, "rewards.png"))
    store = TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True)
    assert store.counts()["failed"] == 3 and store.counts()["done"] == 0
    store.close()


@pytest.mark.slow
def test_kill_9_resume_and_refused_reuse(tmp_path):
    """A parallel search (2 worker processes) killed with SIGKILL, then resumed."""
    run_dir, log = str(tmp_path / "run"), str(tmp_path / "evals.log")
    args = TOY + [f"--run_dir={run_dir}", "--num_trials=12", "--m=3", "--seed=4", "--workers=2"]
    env = {"NASCELL_TEST_SLEEP": "0.2", "NASCELL_TEST_LOG": log, "NASCELL_TEST_WEIGHTS": "1"}
    proc = subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(**env), cwd=str(tmp_path))
    try:
        _wait_for_done(run_dir, proc, at_least=4)
    finally:
        proc.kill()  # SIGKILL, mid-trial
        proc.wait()
    # The workers died with the search: no orphan goes on to finish a trial.
    logged_at_kill = open(log).read() if os.path.exists(log) else ""
    time.sleep(1.0)
    assert (open(log).read() if os.path.exists(log) else "") == logged_at_kill
    store = TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True)
    before = {t.trial_id: t.decisions for t in store.finished()}
    unfinished = {t.trial_id: t.decisions for t in store.unfinished()}
    store.close()
    assert 4 <= len(before) < 12

    done = _cli(args, **env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "12 trials in" in done.stdout and "best reward" in done.stdout
    assert "nascell-search: resuming a search of 12 trials" in done.stderr
    assert f"reward plot: {os.path.join(run_dir, 'rewards.png')}" in done.stdout
    assert os.path.getsize(os.path.join(run_dir, "rewards.png")) > 10_000
    store = TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True)
    finished = store.finished()
    assert sorted(t.trial_id for t in finished) == list(range(12))
    for t in finished:  # killed trials ran again with the same decisions, not resampled
        if t.trial_id in unfinished:
            assert t.decisions == unfinished[t.trial_id]
        if t.trial_id in before:
            assert t.decisions == before[t.trial_id]
    # No finished trial was trained again. A trial whose training had ended but whose result
    # was not yet committed when the kill landed is, rightly, trained again (at most once).
    completed = [int(line.split()[0]) for line in open(log)]
    at_kill = [int(line.split()[0]) for line in logged_at_kill.splitlines()]
    assert set(completed) == set(range(12)), completed
    for trial_id in range(12):
        expected = 1 if trial_id in before else (1, 2)[at_kill.count(trial_id)]
        assert completed.count(trial_id) == expected, (trial_id, completed, sorted(before))
    assert len({line.split()[1] for line in open(log)}) >= 3  # worker pids of both runs
    gens = sorted(os.listdir(os.path.join(run_dir, "strategy")))
    state = json.load(open(os.path.join(run_dir, "strategy", gens[-1], "strategy_state.json")))
    assert sorted(state["told"]) == list(range(12)) and state["next_trial_id"] == 12
    best = json.load(open(os.path.join(run_dir, "best", "best.json")))
    assert best["reward"] == max(t.reward for t in finished)
    # Kept weights (--keep_weights=3): exactly the three best trials' folders, whole, with
    # nothing half-written left by the kill.
    ranked = sorted(finished, key=lambda t: (t.reward, -t.trial_id), reverse=True)[:3]
    weights = os.path.join(run_dir, "weights")
    assert sorted(os.listdir(weights)) == sorted(f"trial_{t.trial_id}" for t in ranked)
    for t in ranked:
        assert open(os.path.join(weights, f"trial_{t.trial_id}", "spec.txt")).read() == t.spec

    # The same directory with a different search is refused, and nothing changes.
    refused = _cli(TOY + [f"--run_dir={run_dir}", "--num_trials=20", "--seed=5"], **env)
    assert refused.returncode != 0
    assert "differing keys: m, strategy.seed;" in refused.stderr
    assert "pick a new --run_dir" in refused.stderr
    counts = TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True).counts()
    assert counts["done"] + counts["failed"] == 12 and counts["pending"] == 0



ENAS_TINY = ["--strategy=enas", "--space=enas_rnn", "--seed=1",
             *[f"--enas_option={kv}" for kv in (
                 "epochs=3", "shared_steps=25", "controller_steps=2", "controller_batch=2",
                 "derive_samples=2", "num_nodes=3", "units=8", "batch_size=4", "seq_len=5",
                 "max_train_tokens=3000", "max_valid_tokens=400", "controller_jit_compile=false")]]


@pytest.mark.slow
def test_enas_kill_9_resume_and_export(tmp_path):
    """--strategy=enas killed with SIGKILL mid-search and run again: the same run-directory code
    as every strategy resumes it (no finished trial scored twice), then the derived cell is
    exported with the shared weights."""
    run_dir = str(tmp_path / "enas")
    args = ENAS_TINY + [f"--run_dir={run_dir}"]
    proc = subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(), cwd=str(tmp_path))
    try:
        _wait_for_done(run_dir, proc, at_least=3, limit=200)
    finally:
        proc.kill()
        proc.wait()
    store = TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True)
    before = {t.trial_id for t in store.finished()}
    store.close()
    assert 3 <= len(before) < 14, before  # 3 epochs x 2 updates x m=2, then 2 derived
    assert os.listdir(os.path.join(run_dir, "strategy"))

    done = _cli(args, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "14 trials in" in done.stdout and "exported the best architecture" in done.stdout
    store = TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True)
    finished = {t.trial_id: t for t in store.finished()}
    assert sorted(finished) == list(range(14))
    for trial_id in before:  # finished before the kill: never scored again
        assert store.attempts(trial_id) == 1, trial_id
    store.close()
    best = json.load(open(os.path.join(run_dir, "best", "best.json")))
    assert finished[best["trial_id"]].meta["phase"] == "derive"
    gens = sorted(os.listdir(os.path.join(run_dir, "strategy")))
    assert "supernet.npz" in os.listdir(os.path.join(run_dir, "strategy", gens[-1]))
    meta = json.load(open(os.path.join(run_dir, "export", "best", "metadata.json")))
    assert meta["kind"] == "enas_rnn_cell" and meta["shapes"]["units"] == 8
    assert meta["weights"]["source"] == "layer 'enas_supernet'"


@pytest.mark.slow
def test_nasbench201_with_the_example_flagfile(tmp_path, shared_data):
    csv_path = shared_data("nasbench201", "nb201_cifar10.csv")
    run_dir = tmp_path / "nb201"
    proc = _cli([f"--flagfile={os.path.join(ROOT, 'configs', 'nasbench201.cfg')}",
                 "--strategy=random", "--num_trials=30", f"--nb201_csv={csv_path}",
                 f"--run_dir={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = TrialStore(str(run_dir / "trials.sqlite"), readonly=True)
    finished = store.finished()
    assert len(finished) == 30 and all(t.status.value == "done" for t in finished)
    best = json.load(open(run_dir / "best" / "best.json"))
    assert best["reward"] == max(t.reward for t in finished) and 0 < best["reward"] < 0.95
    # the summary gives the metric a user reads (the table's accuracy) beside the reward
    accuracy = max(finished, key=lambda t: t.reward).metrics["accuracy"]
    assert f"best reward {best['reward']:.6f} (accuracy {accuracy:.4g}, trial " in proc.stdout
    assert "nothing to export" not in proc.stdout
    assert os.listdir(run_dir / "tensorboard")
