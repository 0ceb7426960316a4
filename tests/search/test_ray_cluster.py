"""A search on a multi-node Ray cluster (Ray's own in-process `Cluster`: a head and two worker
nodes), with a worker node removed while it trains a child: every trial is counted once, the
trained weights come home from every node with the results (a worker node does not share the
driver's file system), and the export at the end carries trained weights."""

import os

import pytest
import runs_helpers as h

from nascell.export import load_metadata
from nascell.search import handover
from nascell.search.core.loop import run_search
from nascell.search.core.strategy import create_strategy
from nascell.search.core.trial import TrialStatus
from nascell.search.rundir.store import TrialStore

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def cluster(tmp_path_factory):
    """A head node with no CPU (the driver only) and two worker nodes of one CPU each."""
    ray = pytest.importorskip("ray", reason="the multi-node test needs `pip install ray`")
    from ray.cluster_utils import Cluster

    # The nodes' workers import the test helpers by module name, and must not see a checkout's
    # own nascell/ (Ray puts the driver's cwd on their sys.path): start from an empty folder.
    old_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([HERE] + [p for p in (old_path or "").split(
        os.pathsep) if p])
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray_cwd"))
    cluster = None
    try:
        # (The nodes' own address: connecting to an existing cluster resolves 127.0.0.1 to
        # this machine's address, so nodes forced onto 127.0.0.1 could not be joined.)
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "include_dashboard": False})
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        yield cluster, workers
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        os.chdir(cwd)
        if old_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old_path


@pytest.mark.slow
def test_search_on_a_cluster_losing_a_node_keeps_trained_weights(tmp_path, cluster):
    from nascell.search.executors.ray_executor import RayExecutor

    ray_cluster, workers = cluster
    events, lost = [], []

    class LosesANode(RayExecutor):
        """Once both nodes have returned a result, removes the node that is still training a
        child (not the one that just returned; the loop has not yet handed it another): that
        child is lost with its node, and Ray runs it again on the other."""

        def wait(self, timeout=None):
            out = super().wait(timeout)
            done_on = [r.metrics.get("node_id") for _, r in out if not r.failed]
            events.extend(done_on)
            if (done_on and len(set(events)) == 2 and "removed" not in events
                    and self.num_in_flight == 1):
                victim = next(n for n in workers if n.node_id != done_on[-1])
                lost.extend(t.trial_id for t in self._refs.values())
                ray_cluster.remove_node(victim)
                events.append("removed")
                survivor.append(done_on[-1])
            return out

    survivor = []

    data = h.tiny_corpus(tmp_path / "text")
    run_dir = str(tmp_path / "run")
    space = h.four_cells()
    evaluator = h.node_tagged_lm(**h.tiny_lm_options(data, epochs=1, steps_per_epoch=8))
    executor = LosesANode(max_in_flight=2, max_retries=2)
    result = run_search(space, create_strategy("random", space, seed=1), evaluator, run_dir,
                        num_trials=4, executor=executor, keep_weights=4, progress=False,
                        tensorboard=False)
    assert "removed" in events and events.index("removed") < 4  # removed mid-search
    # The child training on the removed node was trained again on the other one.
    assert len(lost) == 1
    assert result.trials[lost[0]].metrics["node_id"] == survivor[0]

    # Every trial counted once: four trials, each done once, none failed or pending.
    assert [t.trial_id for t in result.trials] == [0, 1, 2, 3]
    assert all(t.status == TrialStatus.DONE for t in result.trials)
    with TrialStore(os.path.join(run_dir, "trials.sqlite"), readonly=True) as store:
        assert store.counts()["done"] == 4 and not store.unfinished()
        finished = [e for e in store.events() if e["status"] in ("done", "failed")]
        assert sorted(e["trial_id"] for e in finished) == [0, 1, 2, 3]
    # The weights of every trial came home, from both nodes.
    nodes = {t.metrics["node_id"] for t in result.trials}
    assert nodes == {w.node_id for w in workers}
    assert sorted(os.listdir(os.path.join(run_dir, "weights"))) == [
        f"trial_{i}" for i in range(4)]

    meta = load_metadata(handover.export_best(run_dir))
    assert meta["weights"]["trained"] is True
    assert meta["weights"]["training"]["trial_id"] == result.best.trial_id
