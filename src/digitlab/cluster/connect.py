"""Connecting to a Ray cluster named by one `--cluster ADDRESS` string.

ADDRESS is `auto` (the cluster this machine belongs to), `host:port` (its head's GCS port, 6379
by default), `ray://host:port` (Ray Client), or `local:N`: a cluster started here for trying it
out, a head that runs nothing and N one-CPU nodes, stopped when the command ends.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator

from digitlab.errors import ClusterError

INSTALL_HINT = "Ray is not installed; install digitlab's cluster extra: pip install 'digitlab[ray]'"
MAX_LOCAL_NODES = 64
_HOST_PORT = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})$")


def import_ray():
    """The `ray` module, or a ClusterError with the one-line install hint."""
    try:
        import ray
    except ImportError:
        raise ClusterError(INSTALL_HINT) from None
    return ray


def check_address(address: str) -> tuple[str, int | None]:
    """("local", N) for `local:N`, else (address, None) for a well-formed remote address; a
    ClusterError naming what is wrong otherwise."""
    if address.startswith("local:"):
        count = address[len("local:"):]
        if not count.isdigit() or not 1 <= int(count) <= MAX_LOCAL_NODES:
            raise ClusterError(f"--cluster {address}: local:N starts N nodes on this machine, N from 1 to "
                               f"{MAX_LOCAL_NODES} (local:2, say).")
        return "local", int(count)
    match = _HOST_PORT.match(address)
    if address != "auto" and not (match and 0 < int(match.group(3)) < 65536):
        raise ClusterError(f"--cluster {address!r} is not a cluster address: use auto, HOST:PORT (the head's port, "
                           "6379 unless changed), ray://HOST:PORT, or local:N to start N nodes here.")
    return address, None


def reachable(address: str, timeout_s: float = 5.0) -> None:
    """A ClusterError at once when nothing listens at a HOST:PORT address: Ray itself would keep
    retrying the connection for minutes before saying so."""
    match = _HOST_PORT.match(address)
    if match is None:  # auto: Ray finds this machine's cluster, or says at once there is none
        return
    host, port = match.group(2).strip("[]"), int(match.group(3))
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as e:
        raise ClusterError(f"cannot reach a Ray cluster at {address} ({e.strerror or e}); start one with "
                           "`ray start --head`, or try --cluster local:2.") from None


@contextlib.contextmanager
def connected(address: str) -> Iterator[dict]:
    """Ray initialised on the cluster at `address` for the block (its resources, as
    `ray.cluster_resources()`), then disconnected; a local:N cluster is stopped after it."""
    where, nodes = check_address(address)
    ray = import_ray()
    with contextlib.ExitStack() as stack:
        if where == "local":
            from ray.cluster_utils import Cluster

            local = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
            stack.callback(local.shutdown)
            for _ in range(nodes):
                local.add_node(num_cpus=1)
            where = local.address
        else:
            reachable(address)
        try:
            ray.init(address=where, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ClusterError(f"cannot reach a Ray cluster at {address} ({str(e).splitlines()[0][:200]}); start one "
                               "with `ray start --head`, or try --cluster local:2.") from None
        stack.callback(ray.shutdown)
        yield ray.cluster_resources()
