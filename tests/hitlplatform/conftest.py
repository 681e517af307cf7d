import pytest

from tests.hitlplatform.servers import Gunicorn


@pytest.fixture
def start_gunicorn(tmp_path):
    """Start real gunicorn servers of this checkout; all are stopped after the test."""
    servers: list[Gunicorn] = []

    def start(*, env: dict[str, str], workers: int = 2) -> Gunicorn:
        server = Gunicorn(tmp_path / f"gunicorn-{len(servers)}.log", env=env, workers=workers)
        servers.append(server)
        return server.wait_until_up()

    yield start
    for server in servers:
        server.stop()
        print(server.log()[-4000:])  # shown by pytest when the test failed
