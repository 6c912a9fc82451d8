"""The endpoint's named API keys: read from the mounted Secret directory, re-read when it changes.

In the cluster the External Secrets Operator writes one data key per named API key into the Secret
`vllm-api-keys` (config/secrets.py), mounted at `api_keys_dir`: each file is named after its key and
holds JSON, {"current": "<key>"} or, during a rotation, {"current": "<new>", "previous": "<old>"}.
The kubelet swaps a mounted Secret's files atomically (its `..data` symlink), so a rotation reaches a
running replica without a restart: the ring re-reads the directory at most every RELOAD_INTERVAL_S.
Local mode may add one key from an environment variable. Pure standard library (no Ray, no vLLM); config/secrets.py travels in the image for its names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Callable

from config.secrets import KEY_CURRENT, KEY_PREVIOUS, LOCAL_KEY_NAME

logger = logging.getLogger("ray.serve")

RELOAD_INTERVAL_S = 5.0
KEY_FIELDS = (KEY_CURRENT, KEY_PREVIOUS)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_key_file(name: str, text: str) -> list[str]:
    """The valid keys of one key file; a malformed file gives none (fail closed) and says why."""
    try:
        value = json.loads(text)
    except ValueError:
        raise ValueError(f"key file {name!r} is not JSON like {{\"current\": \"...\"}}") from None
    if not isinstance(value, dict) or not isinstance(value.get(KEY_CURRENT), str):
        raise ValueError(f"key file {name!r} needs a string field \"current\" (and optionally \"previous\")")
    unknown = sorted(set(value) - set(KEY_FIELDS))
    if unknown:
        raise ValueError(f"key file {name!r} has unknown field(s) {unknown}; allowed: {list(KEY_FIELDS)}")
    keys = [value[f].strip() for f in KEY_FIELDS if isinstance(value.get(f), str) and value[f].strip()]
    return keys


class KeyRing:
    """Which named key, if any, a bearer token is. Empty keys are never valid."""

    def __init__(self, directory: str = "", env_key: str = "", *,
                 clock: Callable[[], float] = time.monotonic, reload_interval_s: float = RELOAD_INTERVAL_S) -> None:
        self._dir = Path(directory) if directory else None
        self._env_key = env_key.strip()
        self._clock = clock
        self._interval = reload_interval_s
        self._loaded_at = float("-inf")
        self._digests: list[tuple[bytes, str]] = []
        self._problems: list[str] = []
        self.reload()

    @property
    def names(self) -> list[str]:
        return sorted({name for _, name in self._digests})

    @property
    def problems(self) -> list[str]:
        return list(self._problems)

    def reload(self) -> None:
        digests: list[tuple[bytes, str]] = []
        problems: list[str] = []
        if self._env_key:
            digests.append((_digest(self._env_key), LOCAL_KEY_NAME))
        if self._dir is not None:
            try:
                files = sorted(p for p in self._dir.iterdir() if not p.name.startswith(".") and p.is_file())
            except OSError as exc:
                files = []
                problems.append(f"cannot read the API key directory {self._dir}: {exc.strerror or exc}")
            for path in files:
                try:
                    keys = parse_key_file(path.name, path.read_text())
                except (OSError, ValueError) as exc:
                    problems.append(str(exc))
                    continue
                digests.extend((_digest(k), path.name) for k in keys)
        if problems and problems != self._problems:
            for problem in problems:
                logger.error("API keys: %s", problem)
        if self._digests and {n for _, n in digests} != {n for _, n in self._digests}:
            logger.warning("API keys now: %s", sorted({n for _, n in digests}))
        self._digests, self._problems = digests, problems
        self._loaded_at = self._clock()

    def identify(self, token: str) -> str | None:
        """The name of the key `token` is, or None. Compares against every key in constant time each,
        without stopping at a match, so timing shows neither which key matched nor how far it got."""
        if self._clock() - self._loaded_at >= self._interval:
            self.reload()
        if not token:
            return None
        candidate = _digest(token)
        found = None
        for digest, name in self._digests:
            if secrets.compare_digest(candidate, digest) and found is None:
                found = name
        return found


def describe_missing(directory: str, env_name: str) -> str:
    """The log line of a replica that refuses to start without keys."""
    where = [f"files in {directory} (the mounted Secret vllm-api-keys: is the ExternalSecret synced?)"] if directory else []
    if env_name:
        where.append(f"${env_name}")
    return ("refusing to start: no API key found in " + " or ".join(where or ["(no source configured)"]) +
            "; an endpoint without keys would answer anyone. Fix the key source, or set auth to 'disabled' "
            "(local mode: --no-auth) to serve without keys on purpose")


def env_key(env_name: str) -> str:
    return os.environ.get(env_name, "") if env_name else ""
