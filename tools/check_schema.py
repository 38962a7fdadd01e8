#!/usr/bin/python3
"""Validates JSON files against a JSON Schema (Debian's python3-jsonschema).

  check_schema.py SCHEMA.json FILE.json [FILE.json ...]

Prints one line per violation (file, JSON pointer, message) and exits 1 if any, 2 if a file
cannot be read, 0 when every file is valid.
"""

import json
import sys

import jsonschema


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: {path}: {e}", file=sys.stderr)
        sys.exit(2)


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    schema = load(argv[1])
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    bad = 0
    for path in argv[2:]:
        errors = sorted(validator.iter_errors(load(path)), key=lambda e: list(e.absolute_path))
        for e in errors[:20]:
            pointer = "".join(f"/{p}" for p in e.absolute_path) or "/"
            print(f"{path}: {pointer}: {e.message[:300]}")
        bad += bool(errors)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
