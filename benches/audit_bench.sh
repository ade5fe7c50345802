#!/usr/bin/env bash
# Store-audit benchmark: varsmith audit vs ripgrep on the same tree and the same patterns.
#
#   benches/audit_bench.sh [SIZE_GIB] [RUNS]      (defaults: 2 GiB, 3 runs each)
#
# Generates (once, reused while its parameters match) a store-like tree under
# /tmp/varsmith-audit-bench: store paths with small and medium files of random bytes and of
# text-like data (words, hex and base64 noise), a few 64 MiB files (the mmap path), and 100
# random secrets planted ~300 times in raw, hex and base64 forms. The 100 secrets expand to
# about 900 patterns (raw, escaped, hex, HEX, base64 and base64-url at 3 alignments, minus
# the forms that coincide), written to a
# 0600 temporary file for `rg -F -a -c -f`; varsmith gets the secrets themselves through the
# hidden VARSMITH_AUDIT_SECRETS_FILE (label=hex lines) and expands them the same way.
# The page cache is warmed first; then each tool runs RUNS times, alternating, under
# /usr/bin/time -v (wall time, peak RSS). Prints GiB/s and peak memory for both, and for
# varsmith without its sampling prefilter (VARSMITH_AUDIT_NO_SAMPLING=1, plain daachorse).
set -euo pipefail

SIZE_GIB=${1:-2}
RUNS=${2:-3}
ROOT=${VARSMITH_BENCH_DIR:-/tmp/varsmith-audit-bench}
HERE=$(cd "$(dirname "$0")/.." && pwd)

command -v rg >/dev/null || { echo "ripgrep (rg) is required" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is required (Debian package time)" >&2; exit 2; }

echo "== building varsmith (release)"
(cd "$HERE" && cargo build --release --quiet)
BIN="$HERE/target/release/varsmith"

umask 077
SECRETS="$ROOT/secrets.txt"     # label=hex, 0600
PATTERNS=$(mktemp /tmp/varsmith-bench-patterns.XXXXXX)  # 0600 (umask), removed on exit
trap 'rm -f "$PATTERNS"' EXIT

if [ ! -f "$ROOT/done-v3-$SIZE_GIB" ]; then
  echo "== generating a ${SIZE_GIB} GiB tree in $ROOT"
  rm -rf "$ROOT"
  mkdir -p "$ROOT/store"
  python3 - "$ROOT" "$SIZE_GIB" <<'PY'
import base64, os, random, sys
root, size_gib = sys.argv[1], float(sys.argv[2])
rng = random.Random(42)
# Printable ASCII without space (rg reads patterns as lines) plus some non-ASCII letters
# (UTF-8): base64 of pure ASCII rarely differs between the standard and URL-safe alphabets,
# with the high bytes it does, so 100 secrets give about 900 patterns.
alphabet = [chr(c) for c in range(0x21, 0x7f)] + list("äöüßéèçñ€£¥§°µøåæœ")
secrets = ["".join(rng.choice(alphabet) for _ in range(rng.randint(20, 48))).encode() for _ in range(100)]
with open(os.path.join(root, "secrets.txt"), "w") as f:
    for i, s in enumerate(secrets):
        f.write(f"bench-host-{i % 10}/gen-{i}/value={s.hex()}\n")
def encodings(s):
    out = [s, s.hex().encode(), s.hex().upper().encode()]
    for enc in (base64.standard_b64encode, base64.urlsafe_b64encode):
        for k in range(3):
            e = enc(b"\0" * k + s)
            out.append(e[(4 * k + 2) // 3: 4 * ((len(s) + k) // 3)])
    return out
words = (b"the nix store path derivation output closure system etc bin lib share "
         b"configuration service unit ExecStart=/nix/store/ Environment=PATH= systemd "
         b"#!/bin/sh export set -e echo if then fi for do done json yaml true false").split()
pool = bytearray()
while len(pool) < 16 << 20:
    r = rng.random()
    if r < 0.7:
        pool += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    elif r < 0.85:
        pool += os.urandom(32).hex().encode() + b"\n"
    else:
        pool += base64.b64encode(os.urandom(48)) + b"\n"
pool = bytes(pool)
total = int(size_gib * (1 << 30))
big = 8 * (64 << 20) if total >= 1 << 30 else 0
files = []
written = 0
n = 0
while written < total - big:
    d = os.path.join(root, "store", "%032x-pkg-%d" % (rng.getrandbits(128), n))
    os.makedirs(os.path.join(d, "share"), exist_ok=True)
    for j in range(rng.randint(1, 12)):
        size = int(min(rng.lognormvariate(9.5, 1.6), 8 << 20))
        if rng.random() < 0.5:
            data = os.urandom(size)
        else:
            off = rng.randrange(0, len(pool) - size) if size < len(pool) else 0
            data = pool[off:off + size]
        p = os.path.join(d, "share", f"f{j}")
        with open(p, "wb") as f:
            f.write(data)
        files.append(p)
        written += len(data)
    n += 1
for j in range(8 if big else 0):
    d = os.path.join(root, "store", "%032x-big-%d" % (rng.getrandbits(128), j))
    os.makedirs(d)
    p = os.path.join(d, "blob")
    with open(p, "wb") as f:
        for _ in range(4):
            f.write(os.urandom(8 << 20))
            off = rng.randrange(0, len(pool) - (8 << 20))
            f.write(pool[off:off + (8 << 20)])
    files.append(p)
planted = 0
for _ in range(300):
    p = rng.choice(files)
    pat = rng.choice(encodings(rng.choice(secrets)))
    with open(p, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= len(pat):
            continue
        f.seek(rng.randrange(0, size - len(pat)))
        f.write(pat)
        planted += 1
print(f"{len(files)} files, {written + big} bytes, {planted} planted leaks")
PY
  touch "$ROOT/done-v3-$SIZE_GIB"
fi

python3 - "$SECRETS" > "$PATTERNS" <<'PY'
import base64, sys
pats = set()
for line in open(sys.argv[1]):
    s = bytes.fromhex(line.strip().split("=", 1)[1])
    pats |= {s, s.hex().encode(), s.hex().upper().encode()}
    esc = s.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
    pats.add(esc.replace(b"\r", b"\\r").replace(b"\t", b"\\t"))  # varsmith's "escaped"
    for enc in (base64.standard_b64encode, base64.urlsafe_b64encode):
        for k in range(3):
            e = enc(b"\0" * k + s)
            pats.add(e[(4 * k + 2) // 3: 4 * ((len(s) + k) // 3)])
sys.stdout.write("".join(p.decode() + "\n" for p in sorted(pats)))
PY
NPAT=$(wc -l < "$PATTERNS")
BYTES=$(du -sb "$ROOT/store" | cut -f1)
NFILES=$(find "$ROOT/store" -type f | wc -l)
echo "== tree: $NFILES files, $BYTES bytes; 100 secrets -> $NPAT patterns"

echo "== warming the page cache"
find "$ROOT/store" -type f -print0 | xargs -0 cat > /dev/null

run() { # name, command...
  local name=$1; shift
  local log; log=$(mktemp)
  /usr/bin/time -v "$@" > "$ROOT/$name.out" 2> "$log" || true
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  rm -f "$log"
  python3 - "$name" "$wall" "$rss" "$BYTES" "$RESULTS" <<'PY'
import sys
name, wall, rss, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
parts = [float(x) for x in wall.split(":")]
secs = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
print(f"{name:9s} {secs:7.2f} s  {size / secs / (1 << 30):6.2f} GiB/s  peak RSS {rss / 1024:7.1f} MiB")
with open(sys.argv[5], "a") as f:
    f.write(f"{name}\t{secs}\t{rss}\n")
PY
}

RESULTS="$ROOT/results.tsv"
: > "$RESULTS"
echo "== $RUNS runs each ($(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg))"
for i in $(seq "$RUNS"); do
  run varsmith env VARSMITH_AUDIT_SECRETS_FILE="$SECRETS" "$BIN" audit --json --store "$ROOT/store"
  # The same without the sampling prefilter: plain daachorse, for reference.
  run vs-plain env VARSMITH_AUDIT_NO_SAMPLING=1 VARSMITH_AUDIT_SECRETS_FILE="$SECRETS" \
    "$BIN" audit --json --store "$ROOT/store"
  run ripgrep rg -F -a -c -f "$PATTERNS" "$ROOT/store"
done

python3 - "$ROOT/varsmith.out" "$ROOT/ripgrep.out" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
files_v = {f["path"] for f in v["findings"]}
files_r = {l.rsplit(":", 1)[0] for l in open(sys.argv[2]) if l.strip()}
print(f"varsmith: {v['counts']['findings']} findings in {len(files_v)} files, engine {v['engine']}, "
      f"{v['counts']['patterns']} patterns; ripgrep: matches in {len(files_r)} files; "
      f"same files: {files_v == files_r}")
PY

python3 - "$RESULTS" "$BYTES" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]) if l.strip()]
size = int(sys.argv[2])
print("== median of runs")
for name in dict.fromkeys(r[0] for r in rows):
    secs = statistics.median(float(r[1]) for r in rows if r[0] == name)
    rss = max(int(r[2]) for r in rows if r[0] == name)
    print(f"{name:9s} {secs:7.2f} s  {size / secs / (1 << 30):6.2f} GiB/s  max peak RSS {rss / 1024:7.1f} MiB")
PY
