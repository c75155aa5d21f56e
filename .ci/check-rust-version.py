"""Fails when a locked dependency needs a newer Rust than our rust-version (cargo metadata on stdin)."""
import json
import sys


def version(text):
    parts = [int(part) for part in (text or "0").split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


packages = json.load(sys.stdin)["packages"]
ours = next(package for package in packages if package["source"] is None)["rust_version"]
newer = [
    "%s %s needs %s" % (package["name"], package["version"], package["rust_version"])
    for package in packages
    if version(package.get("rust_version")) > version(ours)
]
if newer:
    sys.exit("rust-version %s in Cargo.toml is too low: %s" % (ours, "; ".join(newer)))
print("rust-version %s covers every locked dependency" % ours)
