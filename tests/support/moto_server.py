"""moto's server (the real AWS REST APIs, in memory) on a free loopback port, for boto3 tests."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def running_moto_server() -> Iterator[str]:
    """Yield the server's URL; its state is wiped when the block ends.

    moto keeps its backends per process, not per server, so without the reset an endpoint made in
    one test would still exist in the next test's "fresh" server.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        no_proxy.open(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
        server.stop()


__all__ = ["running_moto_server"]
