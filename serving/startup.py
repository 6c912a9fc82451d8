"""A replica's fatal startup error, said so that an operator can act on it.

vLLM and Ray report a failed start as a traceback in Ray's logs, and Ray Serve retries the replica;
in the cluster that is a RayService that never gets ready and a reason buried in a worker's files.
The replica logs one ERROR line instead: the exception, the serving settings the message points at
(a setting is named when its name, in the args' or vLLM's CLI spelling, or its value appears in the
message), and otherwise the settings that shape the engine. Pure Python: unit-tested without Ray.
"""

from __future__ import annotations

import re
from dataclasses import fields

from config.names import STARTUP_ERROR_MARKER as MARKER
from serving.settings import ServingSettings

# Shown when the message names no setting: what decides whether an engine can start at all.
ENGINE_SHAPE = ("model", "served_model_name", "device", "tensor_parallel_size", "max_model_len", "max_num_seqs",
                "tool_call_parser")


def offending_settings(settings: ServingSettings, message: str) -> list[str]:
    """Settings the error message points at, by name (`tool_call_parser`, `--tool-call-parser`)."""
    text = message.lower()
    return [f.name for f in fields(settings)
            if re.search(rf"(?<![\w-])(--)?({f.name}|{f.name.replace('_', '-')})(?![\w-])", text)]


def describe(settings: ServingSettings, exc: BaseException) -> str:
    message = f"{type(exc).__name__}: {exc}".strip()
    named = offending_settings(settings, message)
    shown = named or list(ENGINE_SHAPE)
    values = ", ".join(f"{name}={getattr(settings, name)!r}" for name in shown)
    label = "offending setting" + ("s" if len(named) > 1 else "") if named else "engine settings"
    return f"{MARKER}: {message} ({label}: {values})"
