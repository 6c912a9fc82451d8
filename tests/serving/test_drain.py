"""serving/drain.py, the worker's preStop: its arguments, the deadline GCS is given, which node and
which actors it waits on, and the sequence against a fake GCS (no Ray). The real thing runs in the
cluster box (tests/cluster_box/test_drain_box.py)."""

from __future__ import annotations

import sys
import types

import pytest

from serving import drain
from serving.drain import Actor, Node


def test_arguments_and_their_checks():
    args = drain.parse_args(["--deadline-s", "60", "--wait-s", "75"])
    assert (args.deadline_s, args.wait_s, args.poll_s, args.address) == (60, 75, 1.0, None)
    for bad in (["--deadline-s", "0", "--wait-s", "75"],       # no deadline: Serve would never stop them
                ["--deadline-s", "60", "--wait-s", "59"],      # giving up before Serve may stop the replicas
                ["--deadline-s", "60", "--wait-s", "75", "--poll-s", "0"],
                ["--wait-s", "75"]):
        with pytest.raises(SystemExit):
            drain.parse_args(bad)


def test_deadline_is_absolute_milliseconds():
    # GCS takes a Unix time in ms (ray/scripts/scripts.py drain_node: now_ms + seconds * 1000).
    assert drain.deadline_timestamp_ms(1_700_000_000.25, 60) == 1_700_000_060_250


NODES = [Node("aa", "10.0.0.10", "head-pod", True), Node("bb", "10.0.0.11", "worker-pod-1", True),
         Node("cc", "10.0.0.12", "worker-pod-2", False), Node("dd", "10.0.0.12", "worker-pod-2", True)]


def test_finds_its_own_alive_node_by_pod_name_then_ip():
    assert drain.find_node(NODES, instance_id="worker-pod-2", ip="ignored").node_id == "dd"  # not the dead one
    assert drain.find_node(NODES, instance_id="", ip="10.0.0.11").node_id == "bb"
    assert drain.find_node(NODES, instance_id="unknown", ip="10.0.0.11").node_id == "bb"
    assert drain.find_node(NODES, instance_id="", ip="10.9.9.9") is None


def test_waits_on_serve_replicas_and_proxies_only():
    actors = [Actor("ServeReplica:vllm:VLLMDeployment", "dd", "ALIVE"), Actor("HAProxyManager", "dd", "ALIVE"),
              Actor("ProxyActor", "dd", "DEAD"), Actor("ServeReplica:vllm:VLLMDeployment", "bb", "ALIVE"),
              Actor("SomethingElse", "dd", "ALIVE"), Actor("ServeController", "aa", "ALIVE")]
    assert drain.serve_actors_on(actors, "dd") == ["HAProxyManager", "ServeReplica:vllm:VLLMDeployment"]
    assert drain.serve_actors_on(actors, "aa") == []


class FakeGcs:
    """Serve leaves the node over `polls` actor listings; `accept` False refuses the drain."""

    def __init__(self, polls: int, accept: bool = True, node_exits: bool = False) -> None:
        self.polls, self.accept, self.node_exits = polls, accept, node_exits
        self.calls: list[tuple] = []
        self.listed = 0

    def nodes(self):
        gone = self.node_exits and self.listed >= self.polls
        return [Node("bb", "10.0.0.11", "worker-pod-1", not gone)]

    def actors(self):
        self.listed += 1
        left = self.listed > self.polls
        return [] if left else [Actor("ServeReplica:vllm:VLLMDeployment", "bb", "ALIVE")]

    def drain(self, node_id, deadline_ms, message):
        self.calls.append(("drain", node_id, deadline_ms, message))
        return self.accept, "" if self.accept else "node is not idle"


def _run(gcs, wait_s=75):
    clock = [0.0]
    rc = drain.drain_and_wait(gcs, instance_id="worker-pod-1", ip="10.0.0.11", deadline_s=60, wait_s=wait_s,
                              poll_s=1.0, wall=lambda: 1000.0, clock=lambda: clock[0],
                              sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    return rc, clock[0]


def test_drains_with_the_deadline_then_waits_until_serve_has_left(capsys):
    gcs = FakeGcs(polls=5)
    rc, waited = _run(gcs)
    assert rc == 0 and waited == 5.0
    assert gcs.calls == [("drain", "bb", 1_060_000, drain.DRAIN_MESSAGE)]
    out = capsys.readouterr().out
    assert "draining node bb" in out and "still on the node: ServeReplica:vllm:VLLMDeployment" in out
    assert "no Serve actor left" in out


def test_a_node_that_left_by_itself_is_drained():
    rc, _ = _run(FakeGcs(polls=3, node_exits=True))
    assert rc == 0


def test_gives_up_after_the_wait_and_says_what_is_left(capsys):
    rc, waited = _run(FakeGcs(polls=1000), wait_s=75)
    assert rc == 2 and waited == 75.0
    assert "gave up after 75s with ServeReplica:vllm:VLLMDeployment" in capsys.readouterr().out


def test_refused_drain_is_reported():
    gcs = FakeGcs(polls=0, accept=False)
    rc, _ = _run(gcs)
    assert rc == 1 and len(gcs.calls) == 1


def test_ray_stop_runs_even_when_the_drain_fails(monkeypatch, capsys):
    stopped = []
    monkeypatch.setattr(drain, "ray_stop", lambda: stopped.append(True) or 0)
    monkeypatch.setattr(drain, "drain_and_wait", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("no GCS")))
    fake_services = types.SimpleNamespace(canonicalize_bootstrap_address_or_die=lambda a: "10.0.0.10:6379",
                                          get_node_ip_address=lambda a: "10.0.0.11")
    monkeypatch.setitem(sys.modules, "ray", types.ModuleType("ray"))
    monkeypatch.setitem(sys.modules, "ray._private", types.SimpleNamespace(services=fake_services))
    monkeypatch.setattr(drain, "GcsCluster", lambda address: object())
    assert drain.main(["--deadline-s", "60", "--wait-s", "75"]) == 1
    assert stopped == [True]
    assert "drain failed: ConnectionError: no GCS" in capsys.readouterr().out
