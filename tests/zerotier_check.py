#!/usr/bin/env python3
"""An independent check of ZeroTier type-0 identities, for varsmith's tests.

Python 3 standard library plus the `openssl` command; it shares no code with varsmith's Rust
implementation. It follows ZeroTierOne's node/Identity.cpp (`_computeMemoryHardHash`,
`locallyValidate`) and node/InetAddress.cpp (`makeIpv6rfc4193`):

* digest = SHA-512(public key); Salsa20/20 (key digest[0:32], nonce digest[32:40]) fills a
  2 MiB buffer, each 64-byte block the previous one XOR the next keystream block; then for
  each pair of 8-byte words (a, b): swap buffer word (be(b) % 262144) with digest word
  (be(a) % 8), and XOR the digest with the next keystream block.
* valid: digest[0] < 17, address == digest[59:64], address not reserved (0 or 0xff…), and, for
  a secret identity, openssl derives the public X25519 and Ed25519 keys from the private ones.

Salsa20 is computed for all 163840 keystream blocks at once (the keystream does not depend on
the digest), one Python integer per state word holding every block in 64-bit lanes.

Input (stdin, JSON): {"identities": ["addr:0:pub[:priv]", ...],
                      "members": [{"nwid": "...", "node": "...", "ip": "..."}, ...]}
Output (stdout, JSON): {"identities": [{"address": ..., "ok": bool, "reason": str}],
                        "members": [{"ok": bool, "want": str}]}. Never prints a private key.
"""

import hashlib
import ipaddress
import json
import subprocess
import sys
from array import array

GEN_MEMORY = 2097152
BUFFER_BLOCKS = GEN_MEMORY // 64  # 32768 keystream blocks fill the buffer
DIGEST_BLOCKS = GEN_MEMORY // 16  # 131072 more encrypt the digest
SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)


def salsa20_keystream(key, nonce, blocks):
    """`blocks` consecutive Salsa20/20 keystream blocks from counter 0, as bytes."""
    lanes = blocks
    mask = int.from_bytes(b"\xff\xff\xff\xff\x00\x00\x00\x00" * lanes, "little")

    def const(v):
        return int.from_bytes(v.to_bytes(8, "little") * lanes, "little")

    k = [int.from_bytes(key[4 * i : 4 * i + 4], "little") for i in range(8)]
    n = [int.from_bytes(nonce[4 * i : 4 * i + 4], "little") for i in range(2)]
    counter_lo = int.from_bytes(
        b"".join((c & 0xFFFFFFFF).to_bytes(8, "little") for c in range(lanes)), "little"
    )
    counter_hi = int.from_bytes(
        b"".join((c >> 32).to_bytes(8, "little") for c in range(lanes)), "little"
    )
    words = [SIGMA[0], k[0], k[1], k[2], k[3], SIGMA[1], n[0], n[1],
             None, None, SIGMA[2], k[4], k[5], k[6], k[7], SIGMA[3]]
    state = [const(w) if w is not None else None for w in words]
    state[8], state[9] = counter_lo, counter_hi
    x = list(state)

    def step(t, a, b, r):
        s = (x[a] + x[b]) & mask
        x[t] ^= ((s << r) | (s >> (32 - r))) & mask

    quarter = [
        (4, 0, 12, 7), (8, 4, 0, 9), (12, 8, 4, 13), (0, 12, 8, 18),
        (9, 5, 1, 7), (13, 9, 5, 9), (1, 13, 9, 13), (5, 1, 13, 18),
        (14, 10, 6, 7), (2, 14, 10, 9), (6, 2, 14, 13), (10, 6, 2, 18),
        (3, 15, 11, 7), (7, 3, 15, 9), (11, 7, 3, 13), (15, 11, 7, 18),
        (1, 0, 3, 7), (2, 1, 0, 9), (3, 2, 1, 13), (0, 3, 2, 18),
        (6, 5, 4, 7), (7, 6, 5, 9), (4, 7, 6, 13), (5, 4, 7, 18),
        (11, 10, 9, 7), (8, 11, 10, 9), (9, 8, 11, 13), (10, 9, 8, 18),
        (12, 15, 14, 7), (13, 12, 15, 9), (14, 13, 12, 13), (15, 14, 13, 18),
    ]
    for _ in range(10):
        for t, a, b, r in quarter:
            step(t, a, b, r)
    out = bytearray(64 * lanes)
    for w in range(16):
        lane_bytes = ((x[w] + state[w]) & mask).to_bytes(8 * lanes, "little")
        for j in range(4):
            out[4 * w + j :: 64] = lane_bytes[j::8]
    return bytes(out)


def be64(v):
    """The big-endian reading (ntoh) of a word stored as native bytes."""
    if sys.byteorder == "little":
        return int.from_bytes(v.to_bytes(8, "little"), "big")
    return v


def memory_hard_hash(public):
    digest = hashlib.sha512(public).digest()
    ks = salsa20_keystream(digest[0:32], digest[32:40], BUFFER_BLOCKS + DIGEST_BLOCKS)
    blocks = []
    acc = 0
    for i in range(BUFFER_BLOCKS):
        acc ^= int.from_bytes(ks[64 * i : 64 * i + 64], "little")
        blocks.append(acc.to_bytes(64, "little"))
    gm = array("Q", b"".join(blocks))
    d = array("Q", digest)
    tail = array("Q", ks[64 * BUFFER_BLOCKS :])
    words = GEN_MEMORY // 8
    for i in range(0, words, 2):
        idx1 = be64(gm[i]) % 8
        idx2 = be64(gm[i + 1]) % words
        gm[idx2], d[idx1] = d[idx1], gm[idx2]
        base = i * 4  # (i // 2) * 8 words of keystream per step
        for w in range(8):
            d[w] ^= tail[base + w]
    return d.tobytes()


def openssl_public(der_prefix, private, spki_prefix):
    """The public key openssl derives from a raw private key (given on stdin, never argv)."""
    der = bytes.fromhex(der_prefix) + private
    out = subprocess.run(
        ["openssl", "pkey", "-inform", "DER", "-pubout", "-outform", "DER"],
        input=der, capture_output=True, check=True,
    ).stdout
    prefix = bytes.fromhex(spki_prefix)
    assert out.startswith(prefix) and len(out) == len(prefix) + 32, "unexpected openssl output"
    return out[len(prefix) :]


def check_identity(text):
    fields = text.strip().split(":")
    if len(fields) not in (3, 4) or fields[1] != "0" or len(fields[0]) != 10:
        return {"address": None, "ok": False, "reason": "malformed"}
    address = fields[0].lower()
    public = bytes.fromhex(fields[2])
    result = {"address": address, "ok": False}
    if len(public) != 64:
        return dict(result, reason="public key length")
    if int(address, 16) == 0 or address.startswith("ff"):
        return dict(result, reason="reserved address")
    digest = memory_hard_hash(public)
    if digest[0] >= 17:
        return dict(result, reason="proof of work: first byte %d" % digest[0])
    if digest[59:64].hex() != address:
        return dict(result, reason="address mismatch: hash gives " + digest[59:64].hex())
    if len(fields) == 4:
        private = bytes.fromhex(fields[3])
        if len(private) != 64:
            return dict(result, reason="private key length")
        x = openssl_public("302e020100300506032b656e04220420", private[:32],
                           "302a300506032b656e032100")
        if x != public[:32]:
            return dict(result, reason="X25519 private key does not match")
        e = openssl_public("302e020100300506032b657004220420", private[32:],
                           "302a300506032b6570032100")
        if e != public[32:]:
            return dict(result, reason="Ed25519 private key does not match")
    return dict(result, ok=True, reason="")


def check_member(m):
    raw = bytes([0xFD]) + bytes.fromhex(m["nwid"]) + bytes([0x99, 0x93]) + bytes.fromhex(m["node"])
    want = ipaddress.IPv6Address(raw)
    got = ipaddress.IPv6Address(m["ip"])
    return {"ok": got == want and len(raw) == 16, "want": str(want)}


def main():
    req = json.load(sys.stdin)
    report = {
        "identities": [check_identity(t) for t in req.get("identities", [])],
        "members": [check_member(m) for m in req.get("members", [])],
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
