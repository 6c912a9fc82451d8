"""The box's kubelet + container runtime for one pod: volumes, init containers, then the main container.

    ip netns exec <pod netns> unshare --mount --propagation private -- python pod_exec.py spec.json

Runs as root inside the pod's own network and (private) mount namespace, so every mount below is the
pod's alone and disappears with its last process. The spec (written by box.py) holds:
  mounts: [{"kind": "bind"|"tmpfs", "source": dir, "target": path, "size": bytes, "readonly": bool}]  in order
  init_containers / container: {"argv": [...], "env": {...}, "uid": int, "gid": int, "groups": [...], "caps": [...],
                                "read_only_root": bool, "cwd": dir, "mounts": [...]}
Each container gets no_new_privs (allowPrivilegeEscalation: false), a bounding/inheritable capability
set of exactly its `caps` and its uid/gid, through util-linux setpriv.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys


def _mount(m: dict) -> None:
    if m["kind"] == "mkdir":
        os.makedirs(m["target"], mode=0o755, exist_ok=True)
        return
    if m["kind"] == "tmpfs":
        # emptyDir medium: Memory -- a tmpfs of sizeLimit, world-writable like every emptyDir.
        cmd = ["mount", "-t", "tmpfs", "-o", f"size={m['size']},mode={m.get('mode', '0777')}", "tmpfs", m["target"]]
    else:
        cmd = ["mount", "--bind", m["source"], m["target"]]
    subprocess.run(cmd, check=True)
    if m.get("readonly"):
        # volumeMounts[].readOnly: a read-only bind of the volume, for this pod only.
        subprocess.run(["mount", "-o", "remount,bind,ro", m["target"]], check=True)


def _setpriv(c: dict) -> list[str]:
    caps = ",".join(["-all"] + [f"+{cap.lower()}" for cap in c.get("caps", [])])
    # The pod's fsGroup is a supplementary group of every container process, as the runtime sets it.
    groups = f"--groups={','.join(str(g) for g in c['groups'])}" if c.get("groups") else "--clear-groups"
    return ["setpriv", f"--reuid={c['uid']}", f"--regid={c['gid']}", groups,
            f"--bounding-set={caps}", f"--inh-caps={caps}", "--no-new-privs", "--"]


def _container_argv(c: dict) -> list[str]:
    argv = _setpriv(c) + c["argv"]
    if c.get("read_only_root"):
        # readOnlyRootFilesystem: the root mount read-only in a mount namespace of this container only.
        script = 'mount -o remount,bind,ro / && exec "$@"'
        argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh", *argv]
    return argv


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    for m in spec["mounts"]:
        _mount(m)
    # The container runtime's open-files limit (containerd's unit: LimitNOFILE=1048576), so KubeRay's
    # `ulimit -n 65536` can raise the soft limit as a non-root user, as it does in a real pod.
    # Where this machine caps the hard limit lower (no CAP_SYS_RESOURCE), keep its hard limit: the
    # `ulimit` then warns and `ray start` runs anyway, as KubeRay joins them with `;`.
    hard = min(1048576, int(open("/proc/sys/fs/nr_open").read()))
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    except (ValueError, OSError):
        pass
    for c in spec["init_containers"]:
        print(f"[pod_exec] init container {c['name']}: {c['argv']}", flush=True)
        rc = subprocess.run(_container_argv(c), env=c["env"], cwd=c["cwd"]).returncode
        if rc != 0:
            print(f"[pod_exec] init container {c['name']} exited {rc}", flush=True)
            sys.exit(100 + rc)
    c = spec["container"]
    print(f"[pod_exec] container {c['name']}: {c['argv']}", flush=True)
    os.chdir(c["cwd"])
    argv = _container_argv(c)
    os.execvpe(argv[0], argv, c["env"])


if __name__ == "__main__":
    main(sys.argv[1])
