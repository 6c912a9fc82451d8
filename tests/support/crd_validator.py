"""Validate a custom resource against the real CRD, offline, the way the API server would on create.

There is no Kubernetes API server in the tests, so this reproduces the parts of its admission that
catch real mistakes in the manifests this project emits:

* structural defaulting (`default:` values are filled in before validation, as the API server does),
* the structural OpenAPI v3 schema (types, required, enums, patterns, bounds, formats, int-or-string,
  nullable, list-type set/map uniqueness, and unknown fields rejected unless the schema preserves them
  -- `kubectl apply` uses strict field validation),
* the CEL rules (`x-kubernetes-validations`) with the Kubernetes CEL libraries the CRDs use
  (strings `split`/`find`/..., lists, `has()`, regex). Transition rules (those using `oldSelf`) run
  only when an old object is given, as on an update. A rule calling a function this module does not
  implement is reported as an error, never skipped.

The CRDs are the first set found of $CRDS_DIR, .cache/crds/ (what `make crds` downloads) and
../shared/crds beside the repository; every file must match its sha256 in scripts/crds.sha256
(scripts/fetch_crds.py finds and checks the set; CRD files are never copied into the repository).

API: `validate_custom_resource(obj) -> list[str]` (empty = valid) and `assert_valid(obj)`.
"""

from __future__ import annotations

import copy
import datetime as _dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import celpy
import jsonschema
import lark
import re2
import yaml
from celpy import celtypes

from scripts import fetch_crds

__all__ = ["CRDValidationError", "crds_dir", "validate_custom_resource", "assert_valid", "known_kinds"]


class CRDValidationError(AssertionError):
    pass


def crds_dir() -> Path:
    """Where the CRD YAML files are: $CRDS_DIR, else .cache/crds (`make crds`), else <repo>/../shared/crds;
    the set must match scripts/crds.sha256 (CRDValidationError naming the file and the fix otherwise)."""
    try:
        return fetch_crds.find_valid_set()
    except fetch_crds.CrdsError as exc:
        raise CRDValidationError(str(exc)) from None


# --- loading and compiling (cached: ray.io_rayservices.yaml is 1 MB) ------------------------------

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _crd_index(directory: str) -> dict[tuple[str, str], Path]:
    """(group, kind) -> CRD file, read cheaply from the head of each file."""
    index: dict[tuple[str, str], Path] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        doc = yaml.load(path.read_text(), Loader=_Loader)
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            index[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = path
    return index


def known_kinds() -> list[str]:
    return sorted(f"{g}/{k}" for g, k in _crd_index(str(crds_dir())))


@functools.cache
def _crd(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=_Loader)


@dataclass
class _Version:
    name: str
    schema: dict  # the CRD's openAPIV3Schema
    validator: jsonschema.protocols.Validator


@functools.cache
def _compiled(path: Path, version: str) -> _Version | None:
    crd = _crd(path)
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served", True):
            schema = v["schema"]["openAPIV3Schema"]
            root = _to_json_schema(schema, top=True)
            cls = jsonschema.Draft4Validator  # OpenAPI v3.0 schemas use draft-4 semantics (exclusiveMaximum: bool)
            return _Version(version, schema, cls(root, format_checker=_FORMATS))
    return None


# ObjectMeta is `type: object` in every CRD; the API server validates it itself. The rules that matter
# for manifests we write: a DNS-1123 name, string labels/annotations, no unknown fields.
_DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_OBJECT_META = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": _DNS1123_SUBDOMAIN, "maxLength": 253},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer"},
        "creationTimestamp": {"type": ["string", "null"]},
        "deletionTimestamp": {"type": ["string", "null"]},
        "deletionGracePeriodSeconds": {"type": "integer"},
        "managedFields": {"type": "array"},
    },
    "additionalProperties": False,
    "anyOf": [{"required": ["name"]}, {"required": ["generateName"]}],
}

_SCHEMA_KEYS = {
    "type", "properties", "required", "items", "enum", "pattern", "format", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems",
    "minProperties", "maxProperties", "multipleOf", "anyOf", "oneOf", "allOf", "not", "uniqueItems",
}


def _to_json_schema(s: dict, top: bool = False) -> dict:
    """Translate a Kubernetes structural schema node into plain JSON Schema (draft 4)."""
    out: dict[str, Any] = {k: v for k, v in s.items() if k in _SCHEMA_KEYS}
    if "properties" in s:
        out["properties"] = {k: _to_json_schema(v) for k, v in s["properties"].items()}
    if isinstance(s.get("items"), dict):
        out["items"] = _to_json_schema(s["items"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in s:
            out[key] = [_to_json_schema(x) for x in s[key]]
    if isinstance(s.get("not"), dict):
        out["not"] = _to_json_schema(s["not"])
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    add = s.get("additionalProperties")
    if isinstance(add, dict):
        out["additionalProperties"] = _to_json_schema(add)
    elif add is not None:
        out["additionalProperties"] = add
    elif s.get("type") == "object" and not preserve and "properties" in s:
        out["additionalProperties"] = False  # structural schema: unknown fields are rejected
    if s.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if top:
        props = out.setdefault("properties", {})
        props["apiVersion"] = {"type": "string"}
        props["kind"] = {"type": "string"}
        props["metadata"] = _OBJECT_META
        out["required"] = sorted(set(out.get("required", [])) | {"apiVersion", "kind", "metadata"})
    return out


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("int32")
def _int32(value: Any) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@_FORMATS.checks("int64")
def _int64(value: Any) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: Any) -> bool:
    if isinstance(value, str):
        _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


# --- defaulting ------------------------------------------------------------------------------------

def _apply_defaults(value: Any, s: dict) -> Any:
    """Fill in `default:` values the way the API server does before validating."""
    if isinstance(value, dict):
        for name, prop in (s.get("properties") or {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                value[name] = _apply_defaults(value[name], prop)
        add = s.get("additionalProperties")
        if isinstance(add, dict):
            for name in list(value):
                if name not in (s.get("properties") or {}):
                    value[name] = _apply_defaults(value[name], add)
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        return [_apply_defaults(v, s["items"]) for v in value]
    return value


# --- structural checks JSON Schema cannot express --------------------------------------------------

def _list_map_errors(value: Any, s: dict, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        for name, prop in (s.get("properties") or {}).items():
            if name in value:
                yield from _list_map_errors(value[name], prop, f"{path}.{name}" if path else name)
        add = s.get("additionalProperties")
        if isinstance(add, dict):
            for name, v in value.items():
                yield from _list_map_errors(v, add, f"{path}[{name}]")
    elif isinstance(value, list):
        if s.get("x-kubernetes-list-type") == "map":
            keys = s.get("x-kubernetes-list-map-keys") or []
            seen = set()
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    k = tuple(repr(item.get(key)) for key in keys)
                    if k in seen:
                        yield f"{path}[{i}]: Duplicate value: map keys {keys} = {k} (list-type map)"
                    seen.add(k)
        if isinstance(s.get("items"), dict):
            for i, item in enumerate(value):
                yield from _list_map_errors(item, s["items"], f"{path}[{i}]")


# --- CEL (x-kubernetes-validations) ----------------------------------------------------------------

def _cel_split(s: celtypes.StringType, sep: celtypes.StringType, n: celtypes.IntType | None = None):
    if n is None or n < 0:
        parts = str(s).split(str(sep))
    elif n == 0:
        parts = []
    else:
        parts = str(s).split(str(sep), int(n) - 1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _cel_find(s: celtypes.StringType, pattern: celtypes.StringType):
    m = re2.search(str(pattern), str(s))
    return celtypes.StringType(m.group(0) if m else "")


def _cel_find_all(s: celtypes.StringType, pattern: celtypes.StringType, n: celtypes.IntType | None = None):
    found = [m.group(0) for m in re2.finditer(str(pattern), str(s))]
    if n is not None and n >= 0:
        found = found[: int(n)]
    return celtypes.ListType([celtypes.StringType(f) for f in found])


def _cel_join(items: celtypes.ListType, sep: celtypes.StringType = celtypes.StringType("")):
    return celtypes.StringType(str(sep).join(str(i) for i in items))


def _cel_index_of(target, item, start=None):
    if isinstance(target, celtypes.ListType):
        for i, x in enumerate(target):
            if x == item:
                return celtypes.IntType(i)
        return celtypes.IntType(-1)
    return celtypes.IntType(str(target).find(str(item), int(start or 0)))


def _cel_last_index_of(target, item):
    if isinstance(target, celtypes.ListType):
        for i in range(len(target) - 1, -1, -1):
            if target[i] == item:
                return celtypes.IntType(i)
        return celtypes.IntType(-1)
    return celtypes.IntType(str(target).rfind(str(item)))


def _cel_is_sorted(items: celtypes.ListType):
    return celtypes.BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))


# Kubernetes CEL libraries (k8s.io/apiserver/pkg/cel/library + cel-go ext strings) that the CRDs we
# validate use, plus a few close relatives. Anything else fails loudly (see _unsupported_functions).
_K8S_FUNCTIONS: dict[str, Any] = {
    "split": _cel_split,
    "find": _cel_find,
    "findAll": _cel_find_all,
    "join": _cel_join,
    "indexOf": _cel_index_of,
    "lastIndexOf": _cel_last_index_of,
    "lowerAscii": lambda s: celtypes.StringType(str(s).lower()),
    "upperAscii": lambda s: celtypes.StringType(str(s).upper()),
    "trim": lambda s: celtypes.StringType(str(s).strip()),
    "replace": lambda s, old, new, n=None: celtypes.StringType(
        str(s).replace(str(old), str(new)) if n is None or n < 0 else str(s).replace(str(old), str(new), int(n))
    ),
    "substring": lambda s, a, b=None: celtypes.StringType(str(s)[int(a): None if b is None else int(b)]),
    "charAt": lambda s, i: celtypes.StringType(str(s)[int(i): int(i) + 1]),
    "isSorted": _cel_is_sorted,
    "sum": lambda items: functools.reduce(lambda a, b: a + b, items, celtypes.IntType(0)),
    "min": lambda items: min(items),
    "max": lambda items: max(items),
}
# Built into cel-python (standard CEL) plus macros the parser expands.
_STANDARD = {
    "size", "contains", "startsWith", "endsWith", "matches", "int", "uint", "double", "string",
    "bool", "bytes", "type", "duration", "timestamp", "dyn", "has", "all", "exists", "exists_one",
    "map", "filter", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear",
    "getMonth", "getHours", "getMilliseconds", "getMinutes", "getSeconds",
}
_SUPPORTED = _STANDARD | set(_K8S_FUNCTIONS)

_CEL_ENV = celpy.Environment()


@dataclass
class _Rule:
    text: str
    program: Any
    transition: bool  # uses oldSelf: evaluated on update only
    unsupported: list[str]


def _called_functions(tree: lark.Tree) -> set[str]:
    names = set()
    for node in tree.iter_subtrees():
        if node.data in ("member_dot_arg", "ident_arg"):
            for child in node.children:
                if isinstance(child, lark.Token) and child.type == "IDENT":
                    names.add(str(child))
    return names


def _uses_old_self(tree: lark.Tree) -> bool:
    return any(isinstance(t, lark.Token) and str(t) == "oldSelf" for t in tree.scan_values(lambda _: True))


@functools.cache
def _rule(text: str) -> _Rule:
    tree = _CEL_ENV.compile(text)
    unsupported = sorted(_called_functions(tree) - _SUPPORTED)
    return _Rule(text, _CEL_ENV.program(tree, functions=_K8S_FUNCTIONS), _uses_old_self(tree), unsupported)


def _cel_errors(value: Any, s: dict, path: str, old: Any) -> Iterator[str]:
    """Evaluate every x-kubernetes-validations rule on the nodes present in the object."""
    for entry in s.get("x-kubernetes-validations") or []:
        where = path or "<root>"
        try:
            rule = _rule(entry["rule"])
        except celpy.CELParseError as exc:
            yield f"{where}: CEL rule {entry['rule']!r} cannot be parsed: {exc}"
            continue
        if rule.unsupported:
            yield (f"{where}: CEL rule {entry['rule']!r} calls {rule.unsupported}, which this validator does "
                   "not implement; add them to tests/support/crd_validator.py")
            continue
        if rule.transition and old is None:
            continue  # transition rule: the API server evaluates it only on update
        activation = {"self": celpy.json_to_cel(value)}
        if rule.transition:
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            result = rule.program.evaluate(activation)
        except Exception as exc:  # noqa: BLE001 -- any evaluation failure is a rejection, as in the API server
            yield f"{where}: CEL rule {entry['rule']!r} could not be evaluated: {exc}"
            continue
        if isinstance(result, celpy.CELEvalError):
            yield f"{where}: CEL rule {entry['rule']!r} could not be evaluated: {result}"
        elif result is not True and result != celtypes.BoolType(True):
            message = entry.get("message") or f"failed rule: {entry['rule']}"
            field = f"{where}{entry['fieldPath']}" if entry.get("fieldPath") else where
            yield f"{field}: Invalid value: {message}"

    if isinstance(value, dict):
        for name, prop in (s.get("properties") or {}).items():
            if name in value and value[name] is not None:
                sub_old = old.get(name) if isinstance(old, dict) else None
                yield from _cel_errors(value[name], prop, f"{path}.{name}" if path else name, sub_old)
        add = s.get("additionalProperties")
        if isinstance(add, dict):
            for name, v in value.items():
                if name not in (s.get("properties") or {}):
                    sub_old = old.get(name) if isinstance(old, dict) else None
                    yield from _cel_errors(v, add, f"{path}[{name}]", sub_old)
    elif isinstance(value, list) and isinstance(s.get("items"), dict):
        for i, item in enumerate(value):
            # Like the API server, correlate old list items only by position for atomic lists is not
            # done: transition rules inside list items run only for list-type map items. Keep it simple.
            yield from _cel_errors(item, s["items"], f"{path}[{i}]", None)


# --- public API ------------------------------------------------------------------------------------

def _path_of(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def validate_custom_resource(obj: dict, old: dict | None = None) -> list[str]:
    """Return the API server's would-be rejections for `obj` (empty list = valid).

    `old`: the previous object, to also run transition rules (oldSelf) as on an update.
    """
    if not isinstance(obj, dict):
        return [f"<root>: expected a mapping (a Kubernetes object), got {type(obj).__name__}"]
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or "/" not in api_version or not isinstance(kind, str):
        return ["apiVersion/kind: a custom resource needs apiVersion GROUP/VERSION and kind"]
    group, version = api_version.rsplit("/", 1)
    index = _crd_index(str(crds_dir()))
    path = index.get((group, kind))
    if path is None:
        return [f"kind: no CRD for {kind} in group {group} under {crds_dir()}; known: {known_kinds()}"]
    compiled = _compiled(path, version)
    if compiled is None:
        served = [v["name"] for v in _crd(path)["spec"]["versions"] if v.get("served", True)]
        return [f"apiVersion: {api_version} is not served by the {kind} CRD; served versions: {served}"]

    obj = _apply_defaults(copy.deepcopy(obj), compiled.schema)
    errors = [
        f"{_path_of(e)}: {e.message}"
        for e in sorted(compiled.validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]
    errors += list(_list_map_errors(obj, compiled.schema, ""))
    if errors:
        return errors  # like the API server, CEL runs only on objects that pass the schema
    old_defaulted = _apply_defaults(copy.deepcopy(old), compiled.schema) if old is not None else None
    return list(_cel_errors(obj, compiled.schema, "", old_defaulted))


def assert_valid(obj: dict, old: dict | None = None) -> None:
    errors = validate_custom_resource(obj, old)
    if errors:
        name = (obj.get("metadata") or {}).get("name", "?") if isinstance(obj, dict) else "?"
        kind = obj.get("kind", "?") if isinstance(obj, dict) else "?"
        raise CRDValidationError(f"{kind} {name!r} is not valid:\n  " + "\n  ".join(errors))
