"""Config as the Pulumi CLI hands it to the program, for the mock runtime (issue 8, item 9).

`cli_config(Pulumi.yaml, Pulumi.<stack>.yaml, secrets)` gives the `(config, secret_keys)` pair
for `pulumi.runtime.config.set_all_config`: the map `pulumi up` sends the Python language host.
It raises `CliConfigError`, with the CLI's text, where `pulumi up` refuses to start.

Read in github.com/pulumi/pulumi at tag v3.259.0, the newest tag in the mirror (the Python SDK
installed here is 3.272.0):
- sdk/go/common/workspace/loaders.go `LoadProjectBytes`. Pulumi.yaml is first checked against
  project.json (`ValidateProject`). `RewriteShorthandConfigValues` then turns `key: 3` into
  `{default: 3}` and `aws:region: x` into `{value: x}`. `Project.Validate` (project.go) follows.
  Types are string, integer, boolean, array (needs `items`) and, since v3.187.0, object. A typed
  default must have its type, and `secret` is not checked at load. `LoadProjectStackBytes` gives
  stack keys with no namespace the project's. Both files are read with gopkg.in/yaml.v3: YAML 1.2
  booleans only, and timestamps stay strings.
- sdk/go/common/resource/config/object.go `unmarshalObject` / `MarshalString`. A top-level stack
  scalar becomes text (`true`, `8080`, Go's float text). Objects and lists stay data.
  `{secure: ...}` is a secret, and an object with a secret inside is secret as a whole.
- pkg/workspace/config.go `mergeConfig`, called through `ValidateStackConfigAndApplyProjectConfig`.
  Its errors are prefixed "validating stack config: " by pkg/cmd/pulumi/operations/up.go (and
  preview, refresh, destroy). Declared keys are handled in sorted order, and each is a property
  path (`acme.staging`). A key the stack does not set gets its `value` or `default`, converted
  by `createConfigValue`: string/int/bool become text, anything else JSON. That value is never
  secret, and a stack's object replaces a default object whole. Project-namespaced keys that have
  neither are reported together ("Stack 'dev' is missing configuration value(s) ...").
  `validateStackConfigValues` then checks typed keys only, stopping at the first problem. First,
  `secret: true` with a plain value, even a default the project injected, is refused ("must be
  encrypted as it's secret"). Then `ValidateConfigValue` checks the type on the decrypted text:
  "8080" passes `integer`, and any scalar passes `string`. Untyped keys are never checked, so
  `secret: true` on them does nothing.
- pkg/resource/deploy/source_eval.go `evalSource.Iterate` puts `Config.Decrypt` and
  `Config.SecureKeys()` in the RunRequest. config/plaintext.go `marshalText` writes strings
  as-is and anything else with Go's `json.Marshal` (sorted keys, `<>&` escaped, secrets inside as
  plain text). sdk/python/cmd/pulumi-language-python/main.go `constructConfig` /
  `constructConfigSecretKeys` pass both on as PULUMI_CONFIG and PULUMI_CONFIG_SECRET_KEYS.
Not modelled: stack environments (ESC `environment:`). For JSON-schema errors only the prefix
and key path are the CLI's. Longer than our usual module: it is one port of those rules, kept
whole so that the tests have a single definition of what the program receives.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import yaml

Segment = Union[str, int]
_INT64 = range(-(2 ** 63), 2 ** 63)
_TYPES = ("string", "integer", "boolean", "array", "object")
_ATTRIBUTES = {"type", "items", "description", "secret", "default", "value"}


class CliConfigError(Exception):
    """The CLI refuses to run; the message is what it prints after `error: `."""


@dataclass(frozen=True)
class Secure:
    """A `{secure: ciphertext}` value; `plaintext` is what decrypting it would give."""

    ciphertext: str
    plaintext: Optional[str] = None


def cli_config(project_file: Path, stack_file: Path,
               secrets: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(config, secret_keys) that `pulumi up` sends the program for this stack.

    `secrets`: key (or path, `app.superuser.password`; the namespace may be left out) -> plain
    value. A key that holds `{secure: ...}` in the stack file decrypts to it. A key the file does
    not hold is added, as `pulumi config set --secret [--path]` would add it. ValueError when a
    secure value is left without one, or when a key given here is plain text in the file.
    """
    stack = Path(stack_file).name.removeprefix("Pulumi.").removesuffix(".yaml")
    project_name, declarations = _load_project(Path(project_file))
    config = _load_stack_config(Path(stack_file), project_name)
    for key, plaintext in secrets.items():
        _set_secret(config, _parse_key(key, project_name), plaintext)
    unresolved = [where for key, value in config.items() for where in _unresolved(value, key)]
    if unresolved:
        raise ValueError(f"no plain value for the secure value(s) at {', '.join(unresolved)}; "
                         "pass them in `secrets`")
    try:
        _apply_project_config(stack, project_name, declarations, config)
    except CliConfigError as error:
        raise CliConfigError(f"validating stack config: {error}") from None
    return ({key: _delivered_text(value) for key, value in sorted(config.items())},
            sorted(key for key, value in config.items() if _is_secure(value)))


# --- mergeConfig and validateStackConfigValues (pkg/workspace/config.go) -----------------------

def _apply_project_config(stack: str, project_name: str, declarations: dict[str, dict],
                          config: dict[str, Any]) -> None:
    missing = []
    for key in sorted(declarations):
        declared = declarations[key]
        namespace, path = _parse_key(key, project_name)
        found, _, _ = _get(config, namespace, path)
        injected = declared.get("default")
        injected = declared.get("value") if injected is None else injected
        if not found and injected is None and namespace == project_name:
            missing.append(key)
        elif not found and injected is not None:
            _set(config, namespace, path, _default_value(injected))
    if missing:
        quoted = [f"'{key}'" for key in sorted(missing)]
        listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
        raise CliConfigError(f"Stack '{stack}' is missing configuration "
                             f"{'values' if len(quoted) > 1 else 'value'} {listed}")
    for key in sorted(declarations):
        declared = declarations[key]
        if declared.get("type") is None:
            continue
        _, value, nested = _get(config, *_parse_key(key, project_name))
        if declared.get("secret") and not _is_secure(value):
            raise CliConfigError(f"Stack '{stack}' with configuration key '{key}' "
                                 "must be encrypted as it's secret")
        if not _has_type(declared["type"], declared.get("items"), _checked_content(value, nested)):
            raise CliConfigError(f"Stack '{stack}' with configuration key '{key}' must be of type "
                                 f"'{_type_name(declared['type'], declared.get('items'))}'")


def _default_value(raw: Any) -> Any:
    """createConfigValue: string, int and bool as text, anything else as a JSON object value."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int) and raw in _INT64:
        return str(raw)
    return _config_object(json.loads(_go_json(raw)))


def _checked_content(value: Any, nested: bool) -> Any:
    """What ValidateConfigValue sees: the decrypted text, parsed as JSON (every number a float64)
    for an object value. A scalar reached through a path is its text."""
    if isinstance(value, Secure):
        return value.plaintext
    if isinstance(value, str):
        return value
    if nested and isinstance(value, (bool, int, float)):
        return _go_json(value)
    return json.loads(_go_json(_plain(value)), parse_int=float)


def _has_type(type_name: str, items: Optional[dict], value: Any) -> bool:
    """workspace.ValidateConfigValue."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return value in _INT64
        if isinstance(value, float):
            return not math.isnan(value) and (math.isinf(value) or value.is_integer())
        return (isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value) is not None
                and int(value) in _INT64)  # strconv.Atoi
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "object":
        return isinstance(value, dict)
    return (isinstance(value, list) and items is not None
            and all(_has_type(items.get("type"), items.get("items"), item) for item in value))


def _type_name(type_name: str, items: Optional[dict]) -> str:
    """InferFullTypeName: `items` makes it an array, whatever `type` says."""
    if items is not None:
        return f"array<{_type_name(items.get('type'), items.get('items'))}>"
    return type_name


# --- config.Map with property paths (sdk/go/common/resource/config/map.go, object.go) ----------

def _get(config: dict[str, Any], namespace: str, path: list[Segment]) -> tuple[bool, Any, bool]:
    """Map.Get(key, path=true): (found, value, reached through a path); "" when not found."""
    root = f"{namespace}:{path[0]}"
    if len(path) == 1:
        return root in config, config.get(root, ""), False
    value = config.get(root)
    for segment in path[1:]:
        if isinstance(value, list) and isinstance(segment, int) and 0 <= segment < len(value):
            value = value[segment]
        elif isinstance(value, dict) and isinstance(segment, str) and segment in value:
            value = value[segment]
        else:
            return False, "", True
    return True, value, True


def _set(config: dict[str, Any], namespace: str, path: list[Segment], value: Any) -> None:
    """Map.Set(key, value, path=true); below the root, text is coerced (`true`, `8080`)."""
    root = f"{namespace}:{path[0]}"
    if len(path) == 1:
        config[root] = value
        return
    current = config[root] if root in config else _new_container(path[1])
    config[root] = _set_inside(current, path[:1], path[1:], _coerced(value))


def _set_inside(current: Any, prefix: list[Segment], path: list[Segment], new: Any) -> Any:
    """object.Set: `current` with `new` at `path`."""
    if not path:
        return new
    head = path[0]
    if current is None or (not isinstance(current, (list, dict)) and len(prefix) == 1):
        current = _new_container(head)  # a scalar root is replaced (the CLI's COMPAT rule)
    elif not isinstance(current, (list, dict)):
        wanted = "an array" if isinstance(head, int) else "a map"
        raise CliConfigError(f"{_path_text(prefix)}: expected {wanted}")
    prefix = prefix + [head]
    if isinstance(current, list):
        if not isinstance(head, int):
            raise CliConfigError(f"{_path_text(prefix)}: key for an array must be an int")
        if not 0 <= head <= len(current):
            raise CliConfigError(f"{_path_text(prefix)}: array index out of range")
        if head == len(current):
            current.append(None)
    elif not isinstance(head, str):
        raise CliConfigError(f"{_path_text(prefix)}: key for a map must be a string")
    elif len(path) == 1 and not current and head == "secure" and isinstance(new, str):
        raise CliConfigError('maps with the single key "secure" are reserved')
    inner = current[head] if isinstance(current, list) else current.get(head)
    current[head] = _set_inside(inner, prefix, path[1:], new)
    return current


def _new_container(segment: Segment) -> Any:
    return [None] * (segment + 1) if isinstance(segment, int) else {}


def _coerced(value: Any) -> Any:
    """Value.coerceObject: plain "true"/"false" and decimal integers (no leading 0)."""
    if not isinstance(value, str):
        return value
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"[+-]?[0-9]+", value) and not (len(value) > 1 and value[0] == "0"):
        number = int(value)
        if number in _INT64 or (value[0] not in "+-" and number < 2 ** 64):
            return number
    return value


def _set_secret(config: dict[str, Any], key: tuple[str, list[Segment]], plaintext: str) -> None:
    found, current, _ = _get(config, *key)
    if found and not isinstance(current, Secure):
        raise ValueError(f"secrets: the stack file holds {_path_text(key[1])} in plain text")
    _set(config, *key, Secure(current.ciphertext if found else "(set by the test)", plaintext))


def _unresolved(value: Any, where: str) -> Iterator[str]:
    if isinstance(value, Secure) and value.plaintext is None:
        yield where
    elif isinstance(value, (dict, list)):
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for name, inner in pairs:
            yield from _unresolved(inner, f"{where}[{name}]" if isinstance(name, int)
                                   else f"{where}.{name}")


def _is_secure(value: Any) -> bool:
    """Value.Secure: a secret, or an object with a secret inside."""
    if isinstance(value, (dict, list)):
        return any(map(_is_secure, value.values() if isinstance(value, dict) else value))
    return isinstance(value, Secure)


def _plain(value: Any) -> Any:
    if isinstance(value, Secure):
        return value.plaintext
    if isinstance(value, dict):
        return {name: _plain(inner) for name, inner in value.items()}
    return [_plain(inner) for inner in value] if isinstance(value, list) else value


def _delivered_text(value: Any) -> str:
    """Plaintext.marshalText after Map.Decrypt: text as it is, anything else as Go's JSON."""
    if isinstance(value, Secure):
        return value.plaintext
    return value if isinstance(value, str) else _go_json(_plain(value))


# --- keys and property paths (config/key.go ParseKey, resource/properties_path.go) -------------

def _config_key(key: str, project_name: str) -> tuple[str, str]:
    """parseConfigKey + config.ParseKey: (namespace, name); the project's when there is none."""
    parts = (key if ":" in key else f"{project_name}:{key}").split(":")
    if len(parts) == 3 and parts[1] == "config":  # the old `<namespace>:config:<name>` form
        parts = [parts[0], parts[2]]
    if len(parts) != 2:
        raise CliConfigError(f"could not parse {key} as a configuration key (configuration keys "
                             "should be of the form `<namespace>:<name>`)")
    return parts[0], parts[1]


def _parse_key(key: str, project_name: str) -> tuple[str, list[Segment]]:
    """A project config key or a `secrets` key: (namespace, property path)."""
    namespace, name = _config_key(key, project_name)
    return namespace, _parse_path(name)


def _parse_path(text: str) -> list[Segment]:
    """ParsePropertyPathStrict: `a.b`, `a[0]`, `a["b.c"]`."""
    segments: list[Segment] = []
    rest = text
    while rest:
        if rest[0] == ".":
            rest = rest[1:]
            if not rest or rest[0] == "[":
                raise CliConfigError(f"invalid config key path: {text}")
            continue
        match = (re.match(r'\["((?:\\"|[^"])*)"\]', rest) or re.match(r"\[(\*|[0-9]+)\]", rest)
                 or re.match(r"([^.\[]*)", rest))
        if rest[0] == "[" and not match.group(0).startswith("["):
            raise CliConfigError(f"invalid config key path: {text}")
        segment = match.group(1)
        if match.group(0).startswith('["'):
            segments.append(segment.replace('\\"', '"'))
        else:
            segments.append(int(segment) if segment.isdigit() and rest[0] == "[" else segment)
        rest = rest[match.end():]
    if not segments or not isinstance(segments[0], str) or not segments[0]:
        raise CliConfigError(f"invalid config key path: {text}")
    return segments


def _path_text(path: list[Segment]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else ("." if i else "") + s
                   for i, s in enumerate(path))


# --- the two files -----------------------------------------------------------------------------

def _load_project(path: Path) -> tuple[str, dict[str, dict]]:
    """LoadProjectBytes: (project name, declarations in their long form)."""
    document = _read_yaml(path)
    invalid = f"could not validate '{path}'"
    if not isinstance(document, dict) or "name" not in document:
        raise CliConfigError(f"{invalid}: project is missing a 'name' attribute")
    name = document["name"]
    if not isinstance(name, str) or not name:
        raise CliConfigError(f"{invalid}: project is missing a non-empty string 'name' attribute")
    block = document.get("config")
    if block is None or isinstance(block, str):  # a string is the old spelling of stackConfigDir
        return name, {}
    declarations = {}
    for key, entry in block.items():
        if isinstance(entry, (str, int, list)):  # shorthand (a bool is an int here)
            entry = {"default" if _namespaced_by(name, key) else "value": entry}
        elif not isinstance(entry, dict):
            raise CliConfigError(f"{invalid}: #/config/{key}: "
                                 "expected string, integer, boolean, array or object")
        unknown = sorted(set(entry) - _ATTRIBUTES)
        if unknown:
            raise CliConfigError(f"{invalid}: #/config/{key}: "
                                 f"additionalProperties '{unknown[0]}' not allowed")
        if entry.get("type", "string") not in _TYPES:
            raise CliConfigError(f"{invalid}: #/config/{key}/type: "
                                 f"value must be one of {', '.join(map(repr, _TYPES))}")
        declarations[key] = entry
    for key, declared in declarations.items():
        problem = _declaration_problem(name, key, declared)
        if problem:
            raise CliConfigError(f"could not unmarshal '{path}': {problem}")
    return name, declarations


def _declaration_problem(project_name: str, key: str, declared: dict) -> Optional[str]:
    """Project.Validate."""
    type_name, items = declared.get("type"), declared.get("items")
    default, value = declared.get("default"), declared.get("value")
    if default is not None and value is not None:
        return f"project config '{key}' cannot have both a 'default' and 'value' attribute"
    if not _namespaced_by(project_name, key):
        if type_name is not None:
            return (f"Configuration key '{key}' is not namespaced by the project "
                    "and should not define a type")
        if default is not None:
            return (f"Configuration key '{key}' is not namespaced by the project and should not "
                    "define a default value. Did you mean to use the 'value' attribute instead "
                    "of 'default'?")
        if value is None:
            return f"Configuration key '{key}' is namespaced and must provide an attribute 'value'"
    elif type_name == "array" and items is None:
        return (f"The configuration key '{key}' declares an array but does not specify the "
                "underlying type via the 'items' attribute")
    elif type_name and default is not None and not _has_type(type_name, items, default):
        return (f"The default value specified for configuration key '{key}' is not of the "
                f"expected type '{_type_name(type_name, items)}'")
    return None


def _namespaced_by(project_name: str, key: str) -> bool:
    return ":" not in key or key.startswith(f"{project_name}:")


def _load_stack_config(path: Path, project_name: str) -> dict[str, Any]:
    """LoadProjectStackBytes: "<namespace>:<name>" -> text, Secure, or object data."""
    document = _read_yaml(path) if path.exists() else None
    if not document:
        return {}
    if "environment" in document:
        raise NotImplementedError("stack environments (ESC `environment:`) are not modelled")
    config = {}
    for key, data in (document.get("config") or {}).items():
        value = _config_object(data)
        if isinstance(value, (bool, int, float)):  # MarshalString: a top-level scalar is text
            value = _go_json(value)
        config[":".join(_config_key(key, project_name))] = value
    return config


def _config_object(data: Any) -> Any:
    """unmarshalObject: YAML/JSON data, `{secure: ...}` maps as Secure."""
    if isinstance(data, dict):
        if len(data) == 1 and isinstance(data.get("secure"), str):
            return Secure(data["secure"])
        return {name: _config_object(inner) for name, inner in data.items()}
    return [_config_object(inner) for inner in data] if isinstance(data, list) else data


# --- Go's YAML (gopkg.in/yaml.v3 resolve.go) and JSON (encoding/json) --------------------------

class _GoYamlLoader(yaml.SafeLoader):
    """Plain scalars as yaml.v3 resolves them into `any`: `yes`/`on`/`1:30` and timestamps stay
    strings, `1e3` is a number, `0x1F`/`0o17`/`017`/`1_000` are ints. Only string keys, once."""

    yaml_implicit_resolvers: dict = {}

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise CliConfigError(f"expected only string keys, got '{key}'")
            if key in seen:
                line = key_node.start_mark.line + 1
                raise CliConfigError(f"yaml: unmarshal errors:\n  line {line}: "
                                     f"mapping key \"{key}\" already defined")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_GO_YAML_WORDS = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf)}
_GO_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _go_yaml_scalar(text: str) -> Any:
    if text in _GO_YAML_WORDS:
        return _GO_YAML_WORDS[text]
    number = None
    if text[0] == "." and _GO_YAML_FLOAT.fullmatch(text):
        number = _go_yaml_float(text)
    elif text[0] in "0123456789+-":
        plain = text.replace("_", "")
        number = _go_parse_int(plain)
        if number is None and _GO_YAML_FLOAT.fullmatch(plain):
            number = _go_yaml_float(plain)
    return text if number is None else number


def _go_parse_int(text: str) -> Optional[int]:
    """strconv.ParseInt(text, 0, 64), then ParseUint (no sign) for what int64 cannot hold."""
    sign, digits = (-1 if text[0] == "-" else 1, text[1:]) if text[0] in "+-" else (1, text)
    base = 10
    if len(digits) >= 3 and digits[0] == "0" and digits[1] in "bBoOxX":
        base, digits = {"b": 2, "o": 8, "x": 16}[digits[1].lower()], digits[2:]
    elif len(digits) > 1 and digits[0] == "0":
        base = 8
    if not digits or any(c not in "0123456789abcdef"[:base] for c in digits.lower()):
        return None
    number = sign * int(digits, base)
    return number if number in _INT64 or (text[0] not in "+-" and number < 2 ** 64) else None


def _go_yaml_float(text: str) -> Any:
    number = float(text)
    if math.isinf(number):
        return None  # ParseFloat's range error: the scalar stays a string
    # The CLI writes the document back out and reads it again; Go prints 3.0 as "3", an int.
    return int(number) if number.is_integer() and abs(number) < 1e6 else number


_GoYamlLoader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^(?:<<)$"), ["<"])
_GoYamlLoader.add_implicit_resolver("!go-plain", re.compile(r"(?s).*"), None)
_GoYamlLoader.add_constructor("!go-plain", lambda loader, node: _go_yaml_scalar(node.value))


def _read_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_GoYamlLoader)


def _go_json(data: Any) -> str:
    """encoding/json.Marshal: sorted keys, no spaces, <>& and U+2028/9 escaped, Go float text."""
    if data is None or isinstance(data, bool):
        return json.dumps(data)
    if isinstance(data, int):
        return str(data)
    if isinstance(data, float):
        return _go_float(data)
    if isinstance(data, str):
        escaped = json.dumps(data, ensure_ascii=False)
        for char in "<>&\u2028\u2029":
            escaped = escaped.replace(char, f"\\u{ord(char):04x}")
        return escaped
    if isinstance(data, list):
        return f"[{','.join(map(_go_json, data))}]"
    return "{" + ",".join(f"{_go_json(name)}:{_go_json(data[name])}" for name in sorted(data)) + "}"


def _go_float(number: float) -> str:
    """encoding/json's float64: shortest digits, an exponent only below 1e-6 or from 1e21."""
    if math.isnan(number) or math.isinf(number):
        raise CliConfigError(f"json: unsupported value: {number}")
    if number != 0 and (abs(number) < 1e-6 or abs(number) >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", repr(number))
    text = format(Decimal(repr(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
