#!/usr/bin/python3
"""Whether result NEW keeps every value of result OLD (keys and array elements as they were,
numbers bit for bit; the recorded command line aside) and only adds keys. Prints the added keys,
array indices folded to [], one per line, and exits 1 when a value of OLD changed or went.
Usage: tools/same_results_subset.py OLD.json NEW.json"""
import json
import sys


def walk(old, new, path, added, changed):
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            if key not in new:
                changed.append(f"{path}/{key} (gone)")
            elif not (path == "/servesim" and key == "command_line"):
                walk(value, new[key], f"{path}/{key}", added, changed)
        for key in new:
            if key not in old:
                added.add(f"{path}/{key}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            walk(a, b, f"{path}[]", added, changed)
    elif type(old) is not type(new) or old != new:
        changed.append(path)


def main():
    old, new = (json.load(open(p)) for p in sys.argv[1:3])
    added, changed = set(), []
    walk(old, new, "", added, changed)
    for key in sorted(added):
        print(f"added {key}")
    for key in changed[:20]:
        print(f"CHANGED {key}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
