#!/usr/bin/env python3
"""The crates linked into the release binary, their licenses and their notices.

    licenses.py check             every shipped crate's license is on the allowlist
    licenses.py notices OUT       write OUT: each shipped crate's name, version, license and
                                  license texts (from its registry source directory)
    licenses.py covers NOTICES    NOTICES names every shipped crate with its version

"Shipped" means reachable from this package over normal dependency edges for the musl target
(`cargo metadata`, offline, for both release targets): dev- and build-dependencies never reach the binary. Proc macros
are counted too; listing a crate too many is harmless, one too few is not.
"""
import json
import os
import re
import subprocess
import sys

TARGETS = ("x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl")

# Permissive licenses that allow shipping one static binary under Apache-2.0 with notices.
ALLOWED = {
    "MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "ISC", "BSD-2-Clause",
    "BSD-3-Clause", "Unicode-3.0", "Unicode-DFS-2016", "CDLA-Permissive-2.0", "Zlib",
    "BSL-1.0", "Unlicense", "0BSD", "OpenSSL", "MPL-2.0",
}

# Crates whose published source carries no license file: their license field is all there is.
# The notices say so and name the source; any other crate without a text fails the build.
NO_TEXT = {"base64-simd", "vsimd"}

LICENSE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|UNLICENSE)", re.IGNORECASE)


def shipped():
    """The packages the release binaries are built from, this one excluded, sorted."""
    found = {}
    for target in TARGETS:
        out = subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--offline",
             "--filter-platform", target],
            check=True, capture_output=True, text=True).stdout
        meta = json.loads(out)
        packages = {p["id"]: p for p in meta["packages"]}
        nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
        seen, todo = set(), [meta["resolve"]["root"]]
        while todo:
            node = nodes[todo.pop()]
            for dep in node["deps"]:
                if any(k["kind"] is None for k in dep["dep_kinds"]) and dep["pkg"] not in seen:
                    seen.add(dep["pkg"])
                    todo.append(dep["pkg"])
        found.update((i, packages[i]) for i in seen)
    return sorted(found.values(), key=lambda p: (p["name"], p["version"]))


def allowed(expression):
    """True when the SPDX expression is satisfiable with allowed licenses only.
    `/` is the old spelling of OR. OR binds looser than AND; parentheses are honoured."""
    tokens = re.findall(r"\(|\)|[A-Za-z0-9.+-]+(?: WITH [A-Za-z0-9.+-]+)?", expression.replace("/", " OR "))
    pos = 0

    def term():
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            value = either()
            pos += 1  # ")"
            return value
        return tok in ALLOWED

    def both():
        nonlocal pos
        value = term()
        while pos < len(tokens) and tokens[pos] == "AND":
            pos += 1
            value = term() and value
        return value

    def either():
        nonlocal pos
        value = both()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            value = both() or value
        return value

    try:
        return either() and pos == len(tokens)
    except IndexError:
        return False


def license_texts(package):
    directory = os.path.dirname(package["manifest_path"])
    names = sorted(n for n in os.listdir(directory) if LICENSE_FILE.match(n))
    if package.get("license_file"):
        names.append(package["license_file"])
    texts = []
    for name in dict.fromkeys(names):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                texts.append((name, f.read()))
    return texts


def check():
    crates = shipped()
    bad = [f"{p['name']} {p['version']}: {p['license'] or 'no license field'}"
           for p in crates if not p["license"] or not allowed(p["license"])]
    if bad:
        sys.exit("licenses not on the allowlist in tests/licenses.py:\n  " + "\n  ".join(bad))
    print(f"licenses: {len(crates)} shipped crates, all on the allowlist", file=sys.stderr)


def header(package):
    return f"{package['name']} {package['version']}"


def notices(out):
    parts = ["Third-party software in etcd-discovery\n\n"
             "The etcd-discovery binary is statically linked and contains the following crates.\n"
             "Each is listed with its version, its license (SPDX) and the license texts it ships.\n"]
    missing = []
    for p in shipped():
        texts = license_texts(p)
        if not texts and p["name"] not in NO_TEXT:
            missing.append(header(p))
        parts.append(f"\n{'=' * 78}\n{header(p)}\nLicense: {p['license']}\n")
        if p.get("repository"):
            parts.append(f"Source: {p['repository']}\n")
        if not texts:
            parts.append("\nThe published crate ships no license text; its license field is the one above.\n")
        for name, text in texts:
            parts.append(f"\n--- {name} ---\n\n{text.rstrip()}\n")
    if missing:
        sys.exit("no license text found in the registry sources of: " + ", ".join(missing))
    with open(out, "w", encoding="utf-8") as f:
        f.write("".join(parts))


def covers(path):
    with open(path, encoding="utf-8") as f:
        lines = set(f.read().splitlines())
    crates = shipped()
    absent = [header(p) for p in crates if header(p) not in lines]
    if absent:
        sys.exit(f"{path} does not cover: " + ", ".join(absent))
    print(f"licenses: {path} covers all {len(crates)} shipped crates", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        check()
    elif len(sys.argv) == 3 and sys.argv[1] == "notices":
        notices(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "covers":
        covers(sys.argv[2])
    else:
        sys.exit(__doc__)
