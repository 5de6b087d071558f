"""pytest plugin: one real single-node Slurm cluster per session (tests/slurm_cluster.py). To be
registered from tests/conftest.py with `pytest_plugins = [..., "tests.slurm_fixtures"]`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.slurm_cluster import SlurmCluster, find_slurm


@pytest.fixture(scope="session")
def slurm_cluster(request: pytest.FixtureRequest) -> Iterator[SlurmCluster]:
    """A started cluster (node idle), stopped at the session's end: running jobs cancelled, the
    daemons stopped, its directory deleted. Without Slurm installed this fails, never skips:
    these tests must run in CI."""
    if not find_slurm():
        pytest.fail("Slurm is not installed (slurmctld, slurmd, munged and sbatch, on PATH or in /usr/sbin): "
                    "run `apt-get install slurm-wlm munge`, or `.ci/run`, which installs them", pytrace=False)
    cluster = SlurmCluster()
    request.addfinalizer(cluster.stop)  # registered first: a half-started cluster is stopped too
    try:
        cluster.start()
    except RuntimeError as e:
        pytest.fail(f"the test Slurm cluster did not start: {e}", pytrace=False)
    yield cluster
