"""A lost node: a real two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``
starts a second raylet), one node removed while it trains a run; the driver resubmits
the run to the node that is left and the study completes, every cell once."""

from __future__ import annotations

import logging

import pytest

from actlab.study import Store, parse_study
from actlab.study.executors import RunEvents
from helpers import TINY_STUDY, db_rows

ray = pytest.importorskip("ray", reason="the Ray executor's tests need `actlab[ray]`")

from actlab.study.ray_executor import run_study_ray  # noqa: E402


@pytest.mark.slow
def test_the_runs_of_a_lost_node_are_rescheduled(tmp_path, caplog) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker_node = cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.WARNING)
        cluster.wait_for_nodes()
        text = TINY_STUDY.format(name="nodes", epochs=4).replace("train_size: 300",
                                                                  "train_size: 3000")
        study = parse_study(__import__("yaml").safe_load(text)).model_copy(
            update={"grid": {"act": ["relu"], "init": ["he_normal"]}})  # 2 runs, 2 nodes
        placed: dict[str, int] = {}
        removed: list[bool] = []

        class RemoveANodeMidway(RunEvents):
            def run_placed(self, spec, host, pid) -> None:
                placed[spec.run_id] = placed.get(spec.run_id, 0) + 1

            def epoch_finished(self, spec, metrics) -> None:
                # Both runs have started (one per node): take the second node away.
                if len(placed) == 2 and not removed:
                    removed.append(True)
                    cluster.remove_node(worker_node)

        db = tmp_path / "ray.db"
        with caplog.at_level(logging.WARNING, logger="actlab.study.ray_executor"), \
                Store(db) as store:
            summary = run_study_ray(store, study, RemoveANodeMidway())
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert removed
    assert summary.counts["completed"] == 2
    assert sorted(placed.values()) == [1, 2]  # the lost node's run was placed again
    assert "worker or node lost" in caplog.text
    assert db_rows(db, "SELECT status, attempts, COUNT(*) FROM runs GROUP BY 1, 2") == [
        ("completed", 1, 2)]
    assert db_rows(db, "SELECT COUNT(*), COUNT(DISTINCT run_id || epoch) FROM epochs") == [
        (8, 8)]
