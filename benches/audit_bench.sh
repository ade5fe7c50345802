#!/usr/bin/env bash
# Store-audit benchmark: varsmith audit vs ripgrep on the same tree and the same patterns, at
# 10, 100 and 1000 secrets, and the cost of decompression.
#
#   benches/audit_bench.sh [SIZE_GIB] [RUNS]      (defaults: 1 GiB, 3 runs each)
#   VARSMITH_BENCH_SETS="1 6" benches/audit_bench.sh   (other secret counts, at most 1000)
#
# Generates (once, reused while its parameters match) a store-like tree under
# /tmp/varsmith-audit-bench: store paths with small and medium files of random bytes and of
# text-like data (words, hex and base64 noise), a few 64 MiB files (the mmap path, from
# 1 GiB up), and compressed files (gzip, xz, zstd, bzip2 of text-like data) making up 20 % of
# the tree's bytes. 1000 random secrets (printable ASCII and some non-ASCII letters) are
# written as label=hex lines; the runs use the first 10, 100 and 1000 of them. About 300 leaks
# (raw, hex and base64 forms) are planted in plain files, spread over the three sets, and a
# few inside compressed files.
#
# For each set the secrets are expanded exactly as varsmith does (raw, escaped, hex, HEX,
# base64 and base64-url at 3 alignments, UTF-16LE/BE, wrapped-base64 fragments, plus the
# private-key markers) into a 0600 temporary file for `rg -F -a -c -f`. ripgrep 13 rejects
# patterns that are not valid UTF-8 (the UTF-16 forms of non-ASCII values): those are left
# out of rg's list and counted, which only makes rg's job smaller. varsmith gets the secrets
# through the hidden VARSMITH_AUDIT_SECRETS_FILE and expands them itself; the script checks
# that both expansions have the same size.
#
# The page cache is warmed first; then, per set, each command runs RUNS times, alternating,
# under /usr/bin/time -v (wall time, peak RSS): varsmith (compressed files also searched
# decompressed), varsmith with VARSMITH_AUDIT_NO_DECOMPRESS=1 (the same work as rg), and rg.
# Prints medians, GiB/s of the tree's bytes, ratios, peak RSS and the load average.
set -euo pipefail

SIZE_GIB=${1:-1}
RUNS=${2:-3}
ROOT=${VARSMITH_BENCH_DIR:-/tmp/varsmith-audit-bench}
HERE=$(cd "$(dirname "$0")/.." && pwd)

command -v rg >/dev/null || { echo "ripgrep (rg) is required" >&2; exit 2; }
command -v zstd >/dev/null || { echo "zstd is required" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is required (Debian package time)" >&2; exit 2; }

echo "== building varsmith (release)"
(cd "$HERE" && cargo build --release --quiet)
BIN="$HERE/target/release/varsmith"

umask 077
SECRETS="$ROOT/secrets.txt"     # label=hex, 0600
WORK=$(mktemp -d /tmp/varsmith-bench-work.XXXXXX)  # 0700: patterns and subsets, removed on exit
trap 'rm -rf "$WORK"' EXIT

if [ ! -f "$ROOT/done-v5-$SIZE_GIB" ]; then
  echo "== generating a ${SIZE_GIB} GiB tree in $ROOT"
  rm -rf "$ROOT"
  mkdir -p "$ROOT/store"
  python3 - "$ROOT" "$SIZE_GIB" <<'PY'
import base64, bz2, gzip, lzma, os, random, subprocess, sys
root, size_gib = sys.argv[1], float(sys.argv[2])
rng = random.Random(42)
# Printable ASCII without space (rg reads patterns as lines) plus some non-ASCII letters
# (UTF-8): base64 of pure ASCII rarely differs between the standard and URL-safe alphabets.
alphabet = [chr(c) for c in range(0x21, 0x7f)] + list("äöüßéèçñ€£¥§°µøåæœ")
secrets = ["".join(rng.choice(alphabet) for _ in range(rng.randint(20, 48))).encode() for _ in range(1000)]
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
def text(size):
    off = rng.randrange(0, len(pool) - size) if size < len(pool) else 0
    return pool[off:off + size]
def compress(data, kind):
    if kind == "gz":
        return gzip.compress(data, 6)
    if kind == "xz":
        return lzma.compress(data)
    if kind == "bz2":
        return bz2.compress(data, 9)
    return subprocess.run(["zstd", "-q", "-3", "-c"], input=data, capture_output=True, check=True).stdout
total = int(size_gib * (1 << 30))
big = 8 * (64 << 20) if total >= 1 << 30 else 0
files, compressed = [], []
written = packed = 0
# The big files come last and are not compressed: the loop's share makes 20 % of the total.
frac = 0.2 * total / max(total - big, 1)
n = 0
while written < total - big:
    d = os.path.join(root, "store", "%032x-pkg-%d" % (rng.getrandbits(128), n))
    os.makedirs(os.path.join(d, "share"))
    for j in range(rng.randint(1, 12)):
        if packed < frac * written:
            kind = rng.choices(["gz", "xz", "zst", "bz2"], [60, 20, 15, 5])[0]
            plain = bytearray(text(int(min(rng.lognormvariate(12, 1.0), 4 << 20))))
            if rng.random() < 0.1:  # a leak inside a compressed file
                pat = rng.choice(encodings(secrets[rng.randrange(10)]))
                at = rng.randrange(0, max(1, len(plain) - len(pat)))
                plain[at:at + len(pat)] = pat
            data = compress(bytes(plain), kind)
            p = os.path.join(d, "share", f"f{j}.{kind}")
            packed += len(data)
            compressed.append(p)
        else:
            size = int(min(rng.lognormvariate(9.5, 1.6), 8 << 20))
            data = os.urandom(size) if rng.random() < 0.5 else text(size)
            p = os.path.join(d, "share", f"f{j}")
            files.append(p)
        with open(p, "wb") as f:
            f.write(data)
        written += len(data)
    n += 1
for j in range(8 if big else 0):
    d = os.path.join(root, "store", "%032x-big-%d" % (rng.getrandbits(128), j))
    os.makedirs(d)
    p = os.path.join(d, "blob")
    with open(p, "wb") as f:
        for _ in range(4):
            f.write(os.urandom(8 << 20))
            f.write(text(8 << 20))
    files.append(p)
planted = 0
for i in range(300):
    # A third each from secrets 0-9, 10-99 and 100-999, so every set has leaks.
    lo, hi = [(0, 10), (10, 100), (100, 1000)][i % 3]
    p = rng.choice(files)
    pat = rng.choice(encodings(secrets[rng.randrange(lo, hi)]))
    with open(p, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= len(pat):
            continue
        f.seek(rng.randrange(0, size - len(pat)))
        f.write(pat)
        planted += 1
print(f"{len(files) + len(compressed)} files ({len(compressed)} compressed, {packed} compressed bytes), "
      f"{written + big} bytes, {planted} planted leaks in plain files")
PY
  touch "$ROOT/done-v5-$SIZE_GIB"
fi

# The patterns of the first N secrets, as varsmith expands them (see src/audit/patterns.rs).
expand() { # secrets-file -> patterns on stdout; "dropped NPAT_ALL" on stderr
  python3 - "$1" <<'PY'
import base64, sys
def inner(s, url, k):
    e = (base64.urlsafe_b64encode if url else base64.standard_b64encode)(b"\0" * k + s)
    return e[(4 * k + 2) // 3: 4 * ((len(s) + k) // 3)]
def fragments(full):
    c = min((len(full) + 1) // 2, 32)
    if c < 12:
        return []
    offs = list(range(0, len(full) - c + 1, c))
    if offs[-1] + c != len(full):
        offs.append(len(full) - c)
    return [full[o:o + c] for o in offs]
def utf16(s):
    try:
        t = s.decode()
    except UnicodeDecodeError:
        return []
    return [t.encode("utf-16-le"), t.encode("utf-16-be")]
pats = set()
for line in open(sys.argv[1]):
    s = bytes.fromhex(line.strip().split("=", 1)[1])
    pats |= {s, s.hex().encode(), s.hex().upper().encode()}
    esc = s.replace(b"\\", b"\\\\").replace(b'"', b'\\"').replace(b"\n", b"\\n")
    esc = esc.replace(b"\r", b"\\r").replace(b"\t", b"\\t")
    pats.add(esc)
    pats |= {inner(s, url, k) for url in (False, True) for k in range(3)}
    pats |= set(utf16(s))
    for k in range(3):
        pats |= set(fragments(inner(s, False, k)))
for m in (b"AGE-SECRET-KEY-1", b"PRIVATE KEY-----", b"PrivateKey"):
    pats |= {m, *utf16(m)}
for m in (b"AGE-SECRET-KEY-1", b"-----BEGIN OPENSSH PRIVATE KEY-----", b"-----BEGIN PRIVATE KEY-----",
          b"-----BEGIN RSA PRIVATE KEY-----", b"-----BEGIN EC PRIVATE KEY-----",
          b"-----BEGIN DSA PRIVATE KEY-----", b"-----BEGIN ENCRYPTED PRIVATE KEY-----"):
    pats |= {inner(m, False, k) for k in range(3)}
ok, dropped = [], 0
for p in sorted(pats):
    try:
        p.decode()
        ok.append(p)
    except UnicodeDecodeError:
        dropped += 1
sys.stdout.buffer.write(b"".join(p + b"\n" for p in ok))
print(f"{dropped} {len(pats)}", file=sys.stderr)
PY
}

BYTES=$(du -sb "$ROOT/store" | cut -f1)
NFILES=$(find "$ROOT/store" -type f | wc -l)
CBYTES=$(find "$ROOT/store" -type f \( -name '*.gz' -o -name '*.xz' -o -name '*.zst' -o -name '*.bz2' \) -print0 | du -cb --files0-from=- | tail -1 | cut -f1)
echo "== tree: $NFILES files, $BYTES bytes, $CBYTES of them in compressed files ($((100 * CBYTES / BYTES)) %)"

echo "== warming the page cache"
find "$ROOT/store" -type f -print0 | xargs -0 cat > /dev/null

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
run() { # set, name, command...
  local set=$1 name=$2; shift 2
  local log="$WORK/time.log"
  /usr/bin/time -v "$@" > "$WORK/$name-$set.out" 2> "$log" || true
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
  python3 - "$set" "$name" "$wall" "$rss" "$BYTES" "$RESULTS" <<'PY'
import sys
s, name, wall, rss, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
secs = sum(float(p) * 60 ** i for i, p in enumerate(reversed(wall.split(":"))))
print(f"  {s:>5} {name:14s} {secs:7.2f} s  {size / secs / (1 << 30):6.2f} GiB/s  peak RSS {rss / 1024:7.1f} MiB")
with open(sys.argv[6], "a") as f:
    f.write(f"{s}\t{name}\t{secs}\t{rss}\n")
PY
}

for N in ${VARSMITH_BENCH_SETS:-10 100 1000}; do
  head -n "$N" "$SECRETS" > "$WORK/secrets-$N.txt"
  expand "$WORK/secrets-$N.txt" > "$WORK/patterns-$N.txt" 2> "$WORK/expand-$N.txt"
  read -r DROPPED ALL < "$WORK/expand-$N.txt"
  echo "== $N secrets: $ALL patterns ($DROPPED non-UTF-8 UTF-16 forms left out for rg); $RUNS runs each, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for i in $(seq "$RUNS"); do
    run "$N" varsmith env VARSMITH_AUDIT_SECRETS_FILE="$WORK/secrets-$N.txt" "$BIN" audit --json --store "$ROOT/store"
    run "$N" vs-no-decomp env VARSMITH_AUDIT_NO_DECOMPRESS=1 VARSMITH_AUDIT_SECRETS_FILE="$WORK/secrets-$N.txt" \
      "$BIN" audit --json --store "$ROOT/store"
    run "$N" ripgrep rg -F -a -c -f "$WORK/patterns-$N.txt" "$ROOT/store"
  done
  python3 - "$WORK/vs-no-decomp-$N.out" "$WORK/varsmith-$N.out" "$WORK/ripgrep-$N.out" "$ALL" <<'PY'
import json, sys
plain, full = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
files = lambda v: {f["path"] for f in v["findings"] + v["keys"]}
rg = {l.rsplit(":", 1)[0] for l in open(sys.argv[3]) if l.strip()}
print(f"  varsmith: {full['counts']['patterns']} patterns (script: {sys.argv[4]}), engine {full['engine']}; "
      f"{plain['counts']['findings']} findings in {len(files(plain))} files without decompression, "
      f"{full['counts']['findings']} in {len(files(full))} files with it "
      f"({full['counts']['compressed_files']} compressed files, {full['counts']['decompressed_bytes']} bytes decompressed); "
      f"rg: matches in {len(rg)} files; same files as rg (no decompression): {files(plain) == rg}")
PY
done

python3 - "$RESULTS" "$BYTES" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
size = int(sys.argv[2])
med = lambda s, n: statistics.median(float(r[2]) for r in rows if r[0] == s and r[1] == n)
rss = lambda s, n: max(int(r[3]) for r in rows if r[0] == s and r[1] == n) / 1024
print("== medians: secrets | varsmith | no decompression | rg | rg/varsmith(no decomp) | rg/varsmith | decompression cost | peak RSS vs / rg")
for s in dict.fromkeys(r[0] for r in rows):
    v, p, r = med(s, "varsmith"), med(s, "vs-no-decomp"), med(s, "ripgrep")
    print(f"  {s:>5} | {v:6.2f} s | {p:6.2f} s ({size / p / (1 << 30):5.2f} GiB/s) | {r:6.2f} s ({size / r / (1 << 30):5.2f} GiB/s) "
          f"| {r / p:5.2f}x | {r / v:5.2f}x | +{v - p:5.2f} s ({100 * (v - p) / p:4.0f} %) "
          f"| {rss(s, 'varsmith'):6.1f} / {rss(s, 'ripgrep'):6.1f} MiB")
PY
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
