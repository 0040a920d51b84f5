"""Shared fixtures, and how pytest-xdist shares the tests out (make test runs two workers)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from helpers import TINY_STUDY

#: Under pytest-xdist (make test: a worker per core) a worker takes a whole test module at a
#: time (--dist loadscope: module fixtures, such as a trained study, are built once), and
#: the Ray modules together (one local cluster at a time: two would compete for ports, and
#: the documented commands end with `ray stop --force`).
ONE_SCOPE = {"test_ray.py": "ray", "test_ray_cluster.py": "ray", "test_cluster_docs.py": "ray"}
#: Modules of long tests that share nothing: handed out a test at a time, so that both
#: workers take some (each shipped study's CI copy trains and reports for a minute).
EACH_TEST = {"test_shipped_studies.py"}

#: The longest modules (make test --durations), handed out first: a long module that
#: starts last would keep one worker busy after the other has finished.
LONGEST_FIRST = ("test_shipped_studies.py", "test_report.py", "test_legacy_store.py",
                 "test_report_variants.py", "test_interruptions.py", "test_benchmarks.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


if importlib.util.find_spec("xdist"):
    from xdist.scheduler import LoadScopeScheduling

    class _ModuleScheduling(LoadScopeScheduling):
        """xdist's --dist loadscope with the modules of :data:`ONE_SCOPE` merged and
        those of :data:`EACH_TEST` split (its own --dist loadgroup loses its groups on
        pytest 9.2: pytest-dev/pytest-xdist#1386)."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            name = module.rsplit("/", 1)[-1]
            return nodeid if name in EACH_TEST else ONE_SCOPE.get(name, module)

    def pytest_xdist_make_scheduler(config, log):
        if config.getvalue("dist") == "loadscope":
            return _ModuleScheduling(config, log)
        return None


@pytest.fixture(autouse=True, scope="session")
def _threads_per_worker() -> None:
    """Under pytest-xdist (a worker per core), torch in each worker gets its share of the
    cores: more threads than cores would only make the workers wait for each other."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(autouse=True, scope="session")
def _offline_and_private_cache(tmp_path_factory) -> None:
    """No test touches the network or the user's cache: downloads go to a closed local
    port (a real, immediate connection refusal) and decoded arrays to a temp dir."""
    previous = {key: os.environ.get(key) for key in ("ACTLAB_MIRROR", "ACTLAB_CACHE")}
    os.environ["ACTLAB_MIRROR"] = "http://127.0.0.1:9"
    os.environ["ACTLAB_CACHE"] = str(tmp_path_factory.mktemp("actlab-cache"))
    yield
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    """Each test starts from seed 0 and leaves torch's thread count as it found it (an
    in-process `actlab run --threads 1` would otherwise slow every later test)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_study_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_STUDY.format(name="tiny", epochs=2))
    return path
