"""Fixtures for the end-to-end tests: real clusters (stopped and removed when their
fixture ends) and the embedding test server. The extension must be installed: `make e2e`
installs the debug build, as `make test` does."""

import pytest

from cluster import Cluster


@pytest.fixture(scope="module")
def embedder():
    """The OpenAI/Ollama test server; reset before each test that uses it."""
    from embedder import Embedder

    server = Embedder()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3():
    """moto's S3 and STS with IAM enforced (tests/s3server.py); a test module with its
    own objects, roles or queues defines its own."""
    from s3server import S3Server

    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def preloaded(embedder):
    """A cluster with ai_loader in shared_preload_libraries; the server's environment
    holds the test embedder's key."""
    cluster = Cluster(["shared_preload_libraries = 'ai_loader'", "ai_loader.request_timeout = '3s'",
                       embedder.key_setting],
                      env={"OPENAI_API_KEY": embedder.api_key})
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def plain():
    """A cluster without ai_loader preloaded."""
    cluster = Cluster()
    yield cluster
    cluster.stop()


def pytest_configure(config):
    config.addinivalue_line("markers", "settings(*lines): postgresql.conf lines for the test's cluster")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the end of the log of every cluster still running."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for cluster in list(Cluster.running):
            report.sections.append((f"server log {cluster.dir} (last lines)", cluster.log_tail()))
