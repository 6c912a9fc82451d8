"""The Ray worker pod's preStop: leave the cluster without dropping a stream, then `ray stop`.

    python -m serving.drain --deadline-s 60 --wait-s 75

A bare `ray stop` kills the node's Serve replicas and its HTTP proxy at once: every stream on them is
cut and Serve's graceful_shutdown_timeout_s never applies. Instead, as Ray's autoscaler v2 does before
it stops a node (ray 2.60 ray/autoscaler/v2/instance_manager/subscribers/ray_stopper.py _drain_ray_node):

1. Ask GCS to drain this node, reason PREEMPTION, with a deadline of --deadline-s (the pod is going
   away: the hidden `ray drain-node` CLI makes the same call, ray/scripts/scripts.py drain_node ->
   GcsClient.drain_node). The raylet then takes no new work.
2. Serve's controller reads the draining nodes from GCS every loop
   (ray/serve/_private/cluster_node_info_cache.py update -> get_draining_nodes) and
   - migrates the node's replicas (ray/serve/_private/deployment_state.py
     migrate_replicas_on_draining_nodes): each RUNNING one becomes PENDING_MIGRATION -- still routed
     to (get_running_replica_infos) -- while a replacement starts on a node that is not draining
     (deployment_scheduler.py schedules on get_active_node_ids = alive minus draining); the old one is
     stopped *gracefully* (in-flight requests finish, up to graceful_shutdown_timeout_s) as soon as the
     replacement runs or, at the latest, when `deadline - graceful_shutdown_timeout_s` is reached
     (_partition_groups_to_stop). With --deadline-s equal to the graceful shutdown budget that is at
     once: the other replicas take the new requests while these finish theirs;
   - drains the node's proxy (controller.py _update_proxy_nodes leaves draining nodes out;
     proxy_state.py reconcile -> update_draining): HAProxy stops taking connections, keeps the open
     ones, and is removed once idle after RAY_SERVE_PROXY_MIN_DRAINING_PERIOD_S (30 s;
     haproxy.py HAProxyManager.is_drained, proxy_state.py _stop_proxies_if_needed).
3. Wait until no Serve actor (replica or proxy) is alive on this node, or --wait-s passes (GCS actor
   table, the same one `ray list actors` reads). A drained, idle raylet also exits by itself ("The
   node is drained, continue to shut down raylet..."); its node is then no longer alive.
4. `ray stop`, always (also when a step above failed: the pod is going anyway).

Log lines go to stdout: the kubelet records them in the FailedPreStopHook event when the hook fails.
Pure stdlib + Ray (the serving image's); Ray is imported only when run, so the tests import this file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol, Sequence

# GCS's reason for a node that is going away whatever it runs (ray/core/generated/autoscaler_pb2
# DrainNodeReason; IDLE_TERMINATION would be refused while actors still run there).
DRAIN_REASON = "DRAIN_NODE_REASON_PREEMPTION"
DRAIN_MESSAGE = "Kubernetes is deleting the worker pod (preStop): Serve migrates its replicas."
# Serve's actors that hold requests: replicas (ray/serve/_private/common.py
# DeploymentID.to_replica_actor_class_name) and the node's proxy (proxy.py ProxyActor, or HAProxyManager
# in haproxy.py with RAY_SERVE_ENABLE_HA_PROXY).
REPLICA_CLASS_PREFIX = "ServeReplica:"
PROXY_CLASSES = ("ProxyActor", "HAProxyManager")
ALIVE = "ALIVE"
# KubeRay sets RAY_CLOUD_INSTANCE_ID to the pod name; Ray records it as the node's instance_id
# (ray/_private/services.py get_node_instance_id).
INSTANCE_ID_ENV = "RAY_CLOUD_INSTANCE_ID"
RAY_STOP_TIMEOUT_S = 60
GCS_TIMEOUT_S = 10


def log(message: str) -> None:
    print(f"serving.drain: {message}", flush=True)


@dataclass(frozen=True)
class Node:
    node_id: str  # hex
    address: str
    instance_id: str
    alive: bool


@dataclass(frozen=True)
class Actor:
    class_name: str
    node_id: str  # hex; "" when not placed
    state: str


class Cluster(Protocol):
    def nodes(self) -> list[Node]: ...
    def actors(self) -> list[Actor]: ...
    def drain(self, node_id: str, deadline_ms: int, message: str) -> tuple[bool, str]: ...


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.drain", description=__doc__.splitlines()[0])
    parser.add_argument("--deadline-s", type=int, required=True,
                        help="the drain deadline GCS and Serve are told: Serve stops this node's replicas "
                             "gracefully no later than this minus graceful_shutdown_timeout_s")
    parser.add_argument("--wait-s", type=int, required=True,
                        help="how long to wait for Serve's actors to leave the node before `ray stop` (>= --deadline-s)")
    parser.add_argument("--poll-s", type=float, default=1.0)
    parser.add_argument("--address", default=None, help="GCS host:port (default: RAY_ADDRESS, else the local instance)")
    args = parser.parse_args(argv)
    if args.deadline_s <= 0:
        parser.error(f"--deadline-s must be positive, got {args.deadline_s}")
    if args.wait_s < args.deadline_s:
        parser.error(f"--wait-s ({args.wait_s}) must cover --deadline-s ({args.deadline_s}): "
                     "Serve may take until the deadline to stop the replicas")
    if args.poll_s <= 0:
        parser.error(f"--poll-s must be positive, got {args.poll_s}")
    return args


def deadline_timestamp_ms(now_s: float, deadline_s: int) -> int:
    """GCS's drain deadline: an absolute Unix time in ms (ray/scripts/scripts.py drain_node)."""
    return int(now_s * 1000) + deadline_s * 1000


def find_node(nodes: Iterable[Node], *, instance_id: str, ip: str) -> Node | None:
    """This pod's alive Ray node: by instance id (the pod name, KubeRay's RAY_CLOUD_INSTANCE_ID), else by IP."""
    alive = [n for n in nodes if n.alive]
    if instance_id:
        by_id = [n for n in alive if n.instance_id == instance_id]
        if len(by_id) == 1:
            return by_id[0]
    by_ip = [n for n in alive if n.address == ip]
    return by_ip[0] if len(by_ip) == 1 else None


def serve_actors_on(actors: Iterable[Actor], node_id: str) -> list[str]:
    """Class names of the alive Serve replicas and proxies on the node (sorted)."""
    return sorted(a.class_name for a in actors
                  if a.node_id == node_id and a.state == ALIVE
                  and (a.class_name.startswith(REPLICA_CLASS_PREFIX) or a.class_name in PROXY_CLASSES))


def drain_and_wait(cluster: Cluster, *, instance_id: str, ip: str, deadline_s: int, wait_s: int,
                   poll_s: float = 1.0, wall: Callable[[], float] = time.time,
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> int:
    """0: drained (no Serve actor left, or the node already gone); 1: not drained (no node, drain
    refused); 2: Serve actors still on the node after wait_s."""
    node = find_node(cluster.nodes(), instance_id=instance_id, ip=ip)
    if node is None:
        log(f"no alive Ray node for instance id {instance_id!r} / IP {ip}: nothing to drain")
        return 1
    started = clock()
    accepted, error = cluster.drain(node.node_id, deadline_timestamp_ms(wall(), deadline_s), DRAIN_MESSAGE)
    if not accepted:
        log(f"GCS refused to drain node {node.node_id}: {error}")
        return 1
    log(f"draining node {node.node_id} ({node.address}), deadline {deadline_s}s; waiting up to {wait_s}s "
        "for its Serve replicas and proxy to leave")
    last: list[str] | None = None
    while True:
        if not any(n.node_id == node.node_id and n.alive for n in cluster.nodes()):
            log(f"node {node.node_id} left the cluster after {clock() - started:.1f}s (drained)")
            return 0
        remaining = serve_actors_on(cluster.actors(), node.node_id)
        if not remaining:
            log(f"no Serve actor left on node {node.node_id} after {clock() - started:.1f}s")
            return 0
        if remaining != last:
            log(f"still on the node: {', '.join(remaining)}")
            last = remaining
        if clock() - started >= wait_s:
            log(f"gave up after {wait_s}s with {', '.join(remaining)} still on the node")
            return 2
        sleep(poll_s)


class GcsCluster:
    """The three GCS calls, through Ray's own client (token auth from RAY_AUTH_MODE/RAY_AUTH_TOKEN)."""

    def __init__(self, address: str) -> None:
        import ray._raylet

        self._gcs = ray._raylet.GcsClient(address=address)

    def nodes(self) -> list[Node]:
        from ray.core.generated import gcs_pb2

        infos = self._gcs.get_all_node_info(timeout=GCS_TIMEOUT_S)
        return [Node(node_id.hex(), n.node_manager_address, n.instance_id, n.state == gcs_pb2.GcsNodeInfo.ALIVE)
                for node_id, n in infos.items()]

    def actors(self) -> list[Actor]:
        from ray.core.generated import gcs_pb2

        async def call():  # the client's future binds to the running loop
            return await self._gcs.async_get_all_actor_info(timeout=GCS_TIMEOUT_S)

        infos = asyncio.run(call())
        state = gcs_pb2.ActorTableData.ActorState.Name
        return [Actor(a.class_name, a.node_id.hex() if a.node_id else "", state(a.state)) for a in infos.values()]

    def drain(self, node_id: str, deadline_ms: int, message: str) -> tuple[bool, str]:
        from ray.core.generated import autoscaler_pb2

        accepted, error = self._gcs.drain_node(node_id, autoscaler_pb2.DrainNodeReason.Value(DRAIN_REASON),
                                               message, deadline_ms)
        return bool(accepted), str(error or "")


def ray_stop() -> int:
    try:
        proc = subprocess.run(["ray", "stop"], capture_output=True, text=True, timeout=RAY_STOP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log(f"ray stop failed: {exc}")
        return 1
    log(f"ray stop exited {proc.returncode}: {(proc.stdout + proc.stderr).strip().splitlines()[-1:]}")
    return proc.returncode


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from ray._private import services

        address = services.canonicalize_bootstrap_address_or_die(args.address)
        rc = drain_and_wait(GcsCluster(address), instance_id=os.environ.get(INSTANCE_ID_ENV, ""),
                            ip=services.get_node_ip_address(address),
                            deadline_s=args.deadline_s, wait_s=args.wait_s, poll_s=args.poll_s)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the node still has to stop
        log(f"drain failed: {type(exc).__name__}: {exc}")
        rc = 1
    stopped = ray_stop()
    return rc or stopped


if __name__ == "__main__":
    sys.exit(main())
