"""One real etcd + API server for the api package's tests, and an admin client factory."""

from __future__ import annotations

import os

import pytest

from provisioner.components.api import kubeconfig
from provisioner.components.api.client import Client
from tests.conftest import dev_cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = dev_cluster(tmp_path_factory.mktemp("api"))
    c.start()
    yield c
    c.stop()


@pytest.fixture
def make_client(cluster):
    """An admin Client; call inside the test's event loop (aiohttp sessions belong to one loop)."""
    def make() -> Client:
        return Client(kubeconfig.load(str(cluster.kubeconfig)), user_agent="tests-api")
    return make


@pytest.fixture
def ns_name(request):
    return "api-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + "-" + os.urandom(2).hex()
