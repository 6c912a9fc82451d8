"""NetworkPolicies (networking.k8s.io/v1) as iptables rules in each pod's network namespace.

The subset this project uses: ingress and egress policies, podSelector.matchLabels, namespaceSelector.matchLabels
on kubernetes.io/metadata.name, ipBlock.cidr, TCP (and, for egress, UDP) ports by number, and default deny (a selected pod
accepts, or sends, only what a rule allows). Anything else raises, so a new policy feature cannot silently
pass the box. Semantics from https://kubernetes.io/docs/concepts/services-networking/network-policies/: a pod
no policy selects (for that direction) is open; rules of all selecting policies add up; replies to allowed
connections pass; traffic from the pod's own node (the kubelet's HTTP probes) is always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass


class UnsupportedPolicy(ValueError):
    pass


@dataclass(frozen=True)
class BoxPod:
    name: str
    namespace: str
    labels: dict
    ip: str


def _match(selector: dict, labels: dict, where: str) -> bool:
    extra = set(selector) - {"matchLabels"}
    if extra:
        raise UnsupportedPolicy(f"{where}: {sorted(extra)} is not modelled by the box")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _peer_addresses(peer: dict, policy_ns: str, pods: list[BoxPod], where: str) -> list[str]:
    """iptables addresses of one peer: the IPs of the pods it selects, or an ipBlock's CIDR (the
    ALB's addresses in the VPC; iptables matches a CIDR as given). ipBlock `except` is not modelled."""
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if set(peer) != {"ipBlock"} or set(block) != {"cidr"}:
            raise UnsupportedPolicy(f"{where}: peer {peer} is not modelled by the box (ipBlock with cidr only)")
        return [block["cidr"]]
    return [q.ip for q in _peer_pods(peer, policy_ns, pods, where)]


def _peer_pods(peer: dict, policy_ns: str, pods: list[BoxPod], where: str) -> list[BoxPod]:
    extra = set(peer) - {"podSelector", "namespaceSelector"}
    if extra:
        raise UnsupportedPolicy(f"{where}: peer {sorted(extra)} is not modelled by the box")
    out = []
    for pod in pods:
        if "namespaceSelector" in peer:
            ns_ok = _match(peer["namespaceSelector"], {"kubernetes.io/metadata.name": pod.namespace}, where)
        else:
            ns_ok = pod.namespace == policy_ns
        if ns_ok and _match(peer.get("podSelector") or {}, pod.labels, where):
            out.append(pod)
    return out


def _ports(rule: dict, where: str, protocols: tuple[str, ...] = ("TCP",)) -> list[tuple[str, int] | None]:
    ports = []
    for port in rule.get("ports") or []:
        proto = port.get("protocol", "TCP")
        if set(port) - {"port", "protocol"} or proto not in protocols or not isinstance(port.get("port"), int):
            raise UnsupportedPolicy(f"{where}: port {port} is not modelled by the box ({'/'.join(protocols)} port numbers only)")
        ports.append((proto.lower(), port["port"]))
    return ports or [None]


def _selecting(pod: BoxPod, policies: list[dict], direction: str) -> list[tuple[str, dict]]:
    out = []
    for p in policies:
        where = f"NetworkPolicy {p['metadata']['namespace']}/{p['metadata']['name']}"
        types = p["spec"].get("policyTypes", ["Ingress"])
        if set(types) - {"Ingress", "Egress"}:
            raise UnsupportedPolicy(f"{where}: policyTypes {types}")
        if direction in types and p["metadata"]["namespace"] == pod.namespace \
                and _match(p["spec"].get("podSelector") or {}, pod.labels, where):
            out.append((where, p))
    return out


def iptables_rules(pod: BoxPod, policies: list[dict], pods: list[BoxPod], node_ip: str) -> list[list[str]]:
    """iptables arguments (INPUT and OUTPUT chains of the pod's own netns) that enforce `policies` for `pod`."""
    return _rules(pod, policies, pods, INGRESS, always_from=node_ip) + _rules(pod, policies, pods, EGRESS)


@dataclass(frozen=True)
class _Direction:
    policy_type: str  # "Ingress" | "Egress"
    chain: str
    interface_flag: str  # the loopback match
    peers_key: str  # "from" | "to"
    address_flag: str  # the peer's side of the packet
    protocols: tuple[str, ...]


INGRESS = _Direction("Ingress", "INPUT", "-i", "from", "-s", ("TCP",))
# A peer of egress that matches no pod of the box (CoreDNS in kube-system) allows nothing here.
EGRESS = _Direction("Egress", "OUTPUT", "-o", "to", "-d", ("TCP", "UDP"))


def _rules(pod: BoxPod, policies: list[dict], pods: list[BoxPod], d: _Direction,
           always_from: str | None = None) -> list[list[str]]:
    selecting = _selecting(pod, policies, d.policy_type)
    if not selecting:
        return []
    rules = [
        ["-A", d.chain, d.interface_flag, "lo", "-j", "ACCEPT"],
        ["-A", d.chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"],
    ]
    if always_from:  # the pod's own node (the kubelet's probes)
        rules.append(["-A", d.chain, d.address_flag, always_from, "-j", "ACCEPT"])
    for where, p in selecting:
        for rule in p["spec"].get(d.policy_type.lower()) or []:
            peers = rule.get(d.peers_key)
            addresses = [None] if not peers else sorted(
                {a for peer in peers for a in _peer_addresses(peer, p["metadata"]["namespace"], pods, where)})
            for address in addresses:
                for port in _ports(rule, where, d.protocols):
                    args = ["-A", d.chain] + ([d.address_flag, address] if address else [])
                    args += ["-p", port[0], "--dport", str(port[1])] if port else []
                    rules.append(args + ["-j", "ACCEPT"])
    rules.append(["-A", d.chain, "-j", "DROP"])
    return rules
