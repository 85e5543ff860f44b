#!/usr/bin/env python3
"""Validates Tariff catalog files against `tariff schema` with a real JSON Schema validator.

usage: validate.py SCHEMA.json FILE.yaml ...

Each file is validated twice (draft 2020-12, jsonschema's Draft202012Validator):
  text:  loaded with yaml.BaseLoader, every scalar a string, the way Tariff reads values;
  typed: loaded like an editor's YAML parser would (numbers and booleans typed; dates kept as
         text, as YAML 1.2 does; PyYAML would otherwise make date objects of them).
Prints one JSON object a line: {"file", "text": [errors], "typed": [errors]} (no errors: valid).
Exits 3 with a message when jsonschema or PyYAML is missing, so the caller can skip.
"""
import json
import re
import sys

try:
    import jsonschema
    import yaml
except ImportError as error:  # the Swift test skips on exit code 3
    print(f"missing Python module: {error.name}; install with: pip install jsonschema pyyaml", file=sys.stderr)
    sys.exit(3)


class TypedLoader(yaml.SafeLoader):
    """SafeLoader made closer to YAML 1.2, as editors parse: 2026-11-01 stays text (no timestamp
    type), only true/false are booleans (yes/no/on/off stay text); numbers are numbers."""


TypedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
TypedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def errors(validator, document):
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message[:300]}"
            for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


def main(arguments):
    if len(arguments) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(arguments[0], encoding="utf-8") as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in arguments[1:]:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        result = {"file": path}
        for mode, loader in (("text", yaml.BaseLoader), ("typed", TypedLoader)):
            try:
                result[mode] = errors(validator, yaml.load(text, Loader=loader))
            except yaml.YAMLError as error:
                result[mode] = [f"YAML: {error}"]
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
