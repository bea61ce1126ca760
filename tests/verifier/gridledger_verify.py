#!/usr/bin/env python3
"""Independent verifier for gridledger checkpoints, receipts and consistency proofs.

This file was written from the public specifications only, never from the Rust
sources of gridledger, so that a byte-format mistake in the Rust implementation
shows up as a disagreement between the two:

* RFC 9162 section 2.1      Merkle tree hashing, inclusion and consistency proofs
* RFC 8032 sections 5.1, 6  Ed25519 (pure Python integers, strict verification)
* C2SP signed-note          https://c2sp.org/signed-note
* C2SP tlog-checkpoint      https://c2sp.org/tlog-checkpoint
* C2SP tlog-cosignature     https://c2sp.org/tlog-cosignature (Ed25519, type 0x04)
* C2SP tlog-proof           https://c2sp.org/tlog-proof
* /work/shared/DESIGN.md section 2 (gridledger's profile of the above)

Python 3.11 standard library only.

Layout
------
  strict base64 / decimal helpers
  Ed25519 (RFC 8032)
  Merkle tree (RFC 9162 section 2.1): hashing, proof generation, proof verification
  signed notes and verifier keys (C2SP signed-note)
  checkpoint body (C2SP tlog-checkpoint, gridledger profile: no extension lines)
  cosignatures (C2SP tlog-cosignature, Ed25519)
  trust policy (JSON)
  checkpoint / receipt / consistency verification (the library API)
  signing helpers (used only by the self-test to build negative cases)
  self-test
  command line interface

CLI (each prints one line; exit 0 on success, `FAIL: <reason>` on stderr and
exit 1 on a verification failure, exit 2 on a usage error):

  gridledger_verify.py checkpoint NOTE_FILE --trust TRUST.json
  gridledger_verify.py receipt RECEIPT_FILE --trust TRUST.json
  gridledger_verify.py consistency --old OLD_NOTE --new NEW_NOTE --proof PROOF_FILE --trust TRUST.json
  gridledger_verify.py selftest [--verbose]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import unicodedata
from typing import Callable, Iterable, Sequence


class VerifyError(Exception):
    """Raised for every input that does not verify or does not parse strictly."""


# ---------------------------------------------------------------------------
# Strict encodings
# ---------------------------------------------------------------------------

_B64_RE = re.compile(r"[A-Za-z0-9+/]*={0,2}")
# RFC 9162 / tlog-checkpoint / tlog-proof: ASCII decimal, no leading zeroes
# unless the value is 0. `str.isdigit` would accept non-ASCII digits, hence a regex.
_DEC_RE = re.compile(r"0|[1-9][0-9]*")
U64_MAX = (1 << 64) - 1


def b64decode_strict(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 section 4) with padding, canonical form only.

    Python's decoder ignores non-zero padding bits ("AB==" and "AA==" both decode
    to b"\\x00"); a verifier meant to catch encoder bugs must not, so the result
    is re-encoded and compared with the input.
    """
    if len(text) % 4 != 0 or not _B64_RE.fullmatch(text):
        raise VerifyError(f"{what}: not standard padded base64: {text!r}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, base64.binascii.Error) as e:  # type: ignore[attr-defined]
        raise VerifyError(f"{what}: bad base64 {text!r}: {e}") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise VerifyError(f"{what}: non-canonical base64 {text!r}")
    return raw


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def parse_decimal(text: str, what: str, maximum: int = U64_MAX) -> int:
    """ASCII decimal with no leading zeroes (unless "0"), at most `maximum`."""
    # fullmatch, not match: "$" would also accept a trailing newline. The length
    # bound keeps int() away from its 4300-digit limit (a ValueError).
    if len(text) > len(str(maximum)) or not _DEC_RE.fullmatch(text):
        raise VerifyError(f"{what}: not a decimal without leading zeroes, or too long: {text[:40]!r}")
    value = int(text)
    if value > maximum:
        raise VerifyError(f"{what}: {value} exceeds the maximum {maximum}")
    return value


# ---------------------------------------------------------------------------
# Ed25519, RFC 8032 section 5.1 (written after the reference code of section 6)
# ---------------------------------------------------------------------------

ED_P = 2**255 - 19  # field prime p
ED_L = 2**252 + 27742317777372353535851937790883648493  # group order L (RFC: q / L)
ED_D = (-121665 * pow(121666, ED_P - 2, ED_P)) % ED_P  # curve constant d
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)  # a square root of -1 mod p

# Points are kept in extended homogeneous coordinates (X, Y, Z, T), x = X/Z,
# y = Y/Z, x*y = T/Z (RFC 8032 section 5.1.4).
Point = tuple[int, int, int, int]
ED_IDENTITY: Point = (0, 1, 1, 0)


def _ed_recover_x(y: int, sign: int) -> int | None:
    """RFC 8032 section 5.1.3 steps 1-4: x from y and the sign bit, or None."""
    if y >= ED_P:  # step 1: non-canonical y is a decoding failure
        return None
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, ED_P - 2, ED_P) % ED_P
    if x2 == 0:
        # step 4: x = 0 with sign bit 1 is a decoding failure
        return None if sign else 0
    x = pow(x2, (ED_P + 3) // 8, ED_P)  # step 2: candidate root
    if (x * x - x2) % ED_P != 0:
        x = x * ED_SQRT_M1 % ED_P  # step 3
    if (x * x - x2) % ED_P != 0:
        return None  # not a square: not a curve point
    if (x & 1) != sign:
        x = ED_P - x
    return x


_ED_BY = 4 * pow(5, ED_P - 2, ED_P) % ED_P
_ED_BX = _ed_recover_x(_ED_BY, 0)
assert _ED_BX is not None
ED_BASE: Point = (_ED_BX, _ED_BY, 1, _ED_BX * _ED_BY % ED_P)


def _ed_add(P: Point, Q: Point) -> Point:
    """Point addition, RFC 8032 section 5.1.4 (a = -1 twisted Edwards formulas)."""
    A = (P[1] - P[0]) * (Q[1] - Q[0]) % ED_P
    B = (P[1] + P[0]) * (Q[1] + Q[0]) % ED_P
    C = 2 * P[3] * Q[3] * ED_D % ED_P
    D = 2 * P[2] * Q[2] % ED_P
    E, F, G, H = B - A, D - C, D + C, B + A
    return (E * F % ED_P, G * H % ED_P, F * G % ED_P, E * H % ED_P)


def _ed_mul(s: int, P: Point) -> Point:
    """Scalar multiplication [s]P, double-and-add."""
    Q = ED_IDENTITY
    while s > 0:
        if s & 1:
            Q = _ed_add(Q, P)
        P = _ed_add(P, P)
        s >>= 1
    return Q


def _ed_equal(P: Point, Q: Point) -> bool:
    """Projective equality: x1/z1 == x2/z2 and y1/z1 == y2/z2."""
    return (P[0] * Q[2] - Q[0] * P[2]) % ED_P == 0 and (P[1] * Q[2] - Q[1] * P[2]) % ED_P == 0


def ed_encode(P: Point) -> bytes:
    """RFC 8032 section 5.1.2: 255-bit little-endian y, top bit = LSB of x."""
    zinv = pow(P[2], ED_P - 2, ED_P)
    x, y = P[0] * zinv % ED_P, P[1] * zinv % ED_P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def ed_decode(s: bytes) -> Point | None:
    """RFC 8032 section 5.1.3; None on any decoding failure (incl. y >= p)."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _ed_recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % ED_P)


def _sha512_mod_l(data: bytes) -> int:
    return int.from_bytes(hashlib.sha512(data).digest(), "little") % ED_L


def _ed_expand_seed(seed: bytes) -> tuple[int, bytes]:
    """RFC 8032 section 5.1.5: secret scalar s (pruned) and the nonce prefix."""
    if len(seed) != 32:
        raise ValueError("Ed25519 seed must be 32 bytes")
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8  # clear the 3 low bits and bit 255
    a |= 1 << 254  # set bit 254
    return a, h[32:]


def ed25519_public_key(seed: bytes) -> bytes:
    """RFC 8032 section 5.1.5: public key A = [s]B from the 32-byte seed."""
    a, _ = _ed_expand_seed(seed)
    return ed_encode(_ed_mul(a, ED_BASE))


def ed25519_sign(seed: bytes, msg: bytes) -> bytes:
    """RFC 8032 section 5.1.6 (used only to build self-test cases)."""
    a, prefix = _ed_expand_seed(seed)
    A = ed_encode(_ed_mul(a, ED_BASE))
    r = _sha512_mod_l(prefix + msg)
    R = ed_encode(_ed_mul(r, ED_BASE))
    k = _sha512_mod_l(R + A + msg)
    S = (r + k * a) % ED_L
    return R + S.to_bytes(32, "little")


def ed25519_verify(public: bytes, msg: bytes, sig: bytes) -> bool:
    """RFC 8032 section 5.1.7, strict and cofactorless.

    1. Split sig into R (32 bytes) and S (32 bytes); decode R and the public
       key A as points (section 5.1.3; any failure, including non-canonical
       y >= p, rejects). S must satisfy 0 <= S < L (non-canonical S rejects:
       without this check S + L would also verify, i.e. malleability).
    2. k = SHA-512(R || A || M) mod L, using the encodings as received.
    3. Check [S]B == R + [k]A (the cofactorless equation; RFC 8032 allows the
       cofactored one, gridledger's brief asks for this one).
    """
    if len(public) != 32 or len(sig) != 64:
        return False
    A = ed_decode(public)
    if A is None:
        return False
    R_bytes, S_bytes = sig[:32], sig[32:]
    R = ed_decode(R_bytes)
    if R is None:
        return False
    S = int.from_bytes(S_bytes, "little")
    if S >= ED_L:
        return False
    k = _sha512_mod_l(R_bytes + public + msg)
    return _ed_equal(_ed_mul(S, ED_BASE), _ed_add(R, _ed_mul(k, A)))


# ---------------------------------------------------------------------------
# Merkle tree, RFC 9162 section 2.1
# ---------------------------------------------------------------------------

HASH_LEN = 32
LEAF_PREFIX = b"\x00"  # RFC 9162 section 2.1.1: leaf hash domain separator
NODE_PREFIX = b"\x01"  # RFC 9162 section 2.1.1: interior node domain separator
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = HASH()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split_point(n: int) -> int:
    """k = the largest power of two strictly smaller than n (n > 1)."""
    assert n > 1
    return 1 << ((n - 1).bit_length() - 1)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D_n), RFC 9162 section 2.1.1, over already leaf-hashed entries."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split_point(n)
    return node_hash(merkle_root(leaf_hashes[:k]), merkle_root(leaf_hashes[k:]))


def inclusion_path(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D_n), RFC 9162 section 2.1.3.1 (self-test generator)."""
    n = len(leaf_hashes)
    if not 0 <= m < n:
        raise ValueError("index out of range")
    if n == 1:
        return []
    k = _split_point(n)
    if m < k:
        return inclusion_path(m, leaf_hashes[:k]) + [merkle_root(leaf_hashes[k:])]
    return inclusion_path(m - k, leaf_hashes[k:]) + [merkle_root(leaf_hashes[:k])]


def consistency_proof(m: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D_n) = SUBPROOF(m, D_n, true), RFC 9162 section 2.1.4.1."""

    def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if b else [merkle_root(d)]
        k = _split_point(n)
        if m <= k:
            return subproof(m, d[:k], b) + [merkle_root(d[k:])]
        return subproof(m - k, d[k:], False) + [merkle_root(d[:k])]

    if not 0 < m <= len(leaf_hashes):
        raise ValueError("consistency proof needs 0 < m <= n")
    return subproof(m, leaf_hashes, True)


def inclusion_path_len(m: int, n: int) -> int:
    """len(PATH(m, D_n)) from the same recursion, sizes only."""
    if not 0 <= m < n:
        raise ValueError("index out of range")
    length = 0
    while n > 1:
        k = _split_point(n)
        if m >= k:
            m, n = m - k, n - k
        else:
            n = k
        length += 1
    return length


def consistency_proof_len(m: int, n: int) -> int:
    """len(PROOF(m, D_n)) from the SUBPROOF recursion, sizes only (0 < m <= n)."""
    if not 0 < m <= n:
        raise ValueError("consistency proof needs 0 < m <= n")
    length, b = 0, True
    while m != n:
        k = _split_point(n)
        if m <= k:
            n = k
        else:
            m, n, b = m - k, n - k, False
        length += 1
    return length if b else length + 1


def _check_hashes(what: str, hashes: Iterable[bytes]) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes) or len(h) != HASH_LEN:
            raise VerifyError(f"{what}[{i}] is not a {HASH_LEN}-byte hash")


def rfc9162_inclusion_root(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2, steps 1-5, literally; returns the computed root.

    The algorithm rejects too-long paths (step 4a) and too-short ones (step 5,
    sn != 0) by itself; `verify_inclusion` additionally checks the length first
    only to give a clearer message.
    """
    if index >= size:  # step 1
        raise VerifyError(f"inclusion: leaf index {index} >= tree size {size}")
    fn, sn = index, size - 1  # step 2
    r = leaf  # step 3
    for p in path:  # step 4
        if sn == 0:  # 4a
            raise VerifyError("inclusion: proof is longer than the tree allows")
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:  # 4b.ii
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    if sn != 0:  # step 5
        raise VerifyError("inclusion: proof is shorter than the tree requires")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> None:
    """Verify that `leaf` (a leaf HASH) is at `index` in the tree (`size`, `root`)."""
    _check_hashes("inclusion path", path)
    _check_hashes("leaf hash", [leaf])
    _check_hashes("root", [root])
    if not 0 <= index < size:
        raise VerifyError(f"inclusion: leaf index {index} is not < tree size {size}")
    want = inclusion_path_len(index, size)
    if len(path) != want:
        raise VerifyError(
            f"inclusion: path has {len(path)} hashes, index {index} in size {size} needs {want}")
    computed = rfc9162_inclusion_root(index, size, leaf, path)
    if computed != root:
        raise VerifyError(
            f"inclusion: computed root {computed.hex()} != expected root {root.hex()}")


def rfc9162_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes,
                        path: Sequence[bytes]) -> None:
    """RFC 9162 section 2.1.4.2 steps 1-7, literally, for 0 < first < second."""
    if not 0 < first < second:
        raise VerifyError(f"consistency: algorithm needs 0 < first < second, got {first}, {second}")
    if not path:  # step 1
        raise VerifyError("consistency: empty proof")
    path = list(path)
    if _is_power_of_two(first):  # step 2
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:  # 6a
            raise VerifyError("consistency: proof is longer than the trees allow")
        if fn & 1 or fn == sn:  # 6b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:  # 6b.iii
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # 6c
        sn >>= 1
    # step 7
    if sn != 0:
        raise VerifyError("consistency: proof is shorter than the trees require")
    if fr != first_hash:
        raise VerifyError(
            f"consistency: computed old root {fr.hex()} != old root {first_hash.hex()}")
    if sr != second_hash:
        raise VerifyError(
            f"consistency: computed new root {sr.hex()} != new root {second_hash.hex()}")


def verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes,
                       path: Sequence[bytes]) -> None:
    """Verify that tree (first, first_hash) is a prefix of (second, second_hash).

    Edge cases (RFC 9162 section 2.1.4 defines proofs only for 0 < first < second):
    * first > second: rejected.
    * first == second: the proof must be empty and the roots equal
      (SUBPROOF(m, D_m, true) = {}).
    * first == 0: the empty tree is a prefix of every tree, so there is nothing
      to prove; the proof must be empty and the old root must be MTH({}).
    """
    _check_hashes("consistency proof", path)
    _check_hashes("root", [first_hash, second_hash])
    if first < 0 or second < 0:
        raise VerifyError("consistency: negative tree size")
    if first > second:
        raise VerifyError(f"consistency: old size {first} > new size {second}")
    if first == second:
        if path:
            raise VerifyError(f"consistency: sizes are equal ({first}) but the proof is not empty")
        if first_hash != second_hash:
            raise VerifyError(
                f"consistency: same size {first} but roots differ: {first_hash.hex()} != {second_hash.hex()}")
        return
    if first == 0:
        if path:
            raise VerifyError("consistency: proof from the empty tree must be empty")
        if first_hash != EMPTY_ROOT:
            raise VerifyError(f"consistency: size 0 but root {first_hash.hex()} is not MTH({{}})")
        return
    want = consistency_proof_len(first, second)
    if len(path) != want:
        raise VerifyError(
            f"consistency: proof has {len(path)} hashes, {first} -> {second} needs {want}")
    rfc9162_consistency(first, second, first_hash, second_hash, path)


# ---------------------------------------------------------------------------
# Signed notes, C2SP signed-note
# ---------------------------------------------------------------------------

SIG_PREFIX = "\u2014 "  # em dash U+2014 then a space
SIG_TYPE_ED25519 = 0x01  # signed-note "Signature types"
SIG_TYPE_COSIG_V1 = 0x04  # tlog-cosignature, timestamped Ed25519
MAX_NOTE_BYTES = 1 << 20  # signed-note: verifiers SHOULD bound the note size
MAX_SIGNATURES = 100  # signed-note: MUST accept at least 16


@dataclasses.dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes  # 4 bytes, big-endian uint32 on the wire
    sig: bytes  # the bytes after the key id


def _has_unicode_space(s: str) -> bool:
    return any(ch.isspace() or unicodedata.category(ch) in ("Zs", "Zl", "Zp") for ch in s)


def check_key_name(name: str) -> None:
    """signed-note: key names MUST be non-empty, no Unicode spaces, no '+'."""
    if not name:
        raise VerifyError("key name is empty")
    if "+" in name or _has_unicode_space(name):
        raise VerifyError(f"key name {name!r} contains a space or '+'")


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """SHA-256(key name || 0x0A || signature type || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def parse_signed_note(data: bytes) -> tuple[bytes, list[NoteSignature]]:
    """Split a signed note into (text bytes, signature lines), strictly.

    signed-note "Format": the note is valid UTF-8 without ASCII control
    characters other than newline; the text ends in a newline and is separated
    from one or more signature lines by the LAST empty line; every signature line
    is `— <key name> <base64(key id || signature)>\\n` with a valid key name and at
    least 4+1 decoded bytes. The signature covers the text bytes exactly,
    including its final newline and excluding the blank line.
    """
    if len(data) > MAX_NOTE_BYTES:
        raise VerifyError(f"note is larger than {MAX_NOTE_BYTES} bytes")
    try:
        s = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise VerifyError(f"note is not valid UTF-8: {e}") from None
    for i, ch in enumerate(s):
        if ord(ch) < 0x20 and ch != "\n":
            raise VerifyError(f"note contains control character {ch!r} at offset {i}")
    if not s.endswith("\n"):
        raise VerifyError("note does not end in a newline")
    sep = s.rfind("\n\n")
    if sep < 0:
        raise VerifyError("note has no blank line between text and signatures")
    text, sig_block = s[: sep + 1], s[sep + 2:]
    if not sig_block:
        raise VerifyError("note has no signature lines")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerifyError(f"note has more than {MAX_SIGNATURES} signatures")
    sigs = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise VerifyError(f"signature line does not start with an em dash and a space: {line!r}")
        name, space, blob64 = line[len(SIG_PREFIX):].partition(" ")
        if not space:
            raise VerifyError(f"signature line has no space after the key name: {line!r}")
        check_key_name(name)
        blob = b64decode_strict(blob64, f"signature of {name!r}")
        if len(blob) < 5:
            raise VerifyError(f"signature of {name!r} is shorter than 4+1 bytes")
        sigs.append(NoteSignature(name, blob[:4], blob[4:]))
    return text.encode("utf-8"), sigs


@dataclasses.dataclass(frozen=True)
class VerifierKey:
    name: str
    key_id: bytes
    sig_type: int
    public_key: bytes
    text: str


def parse_verifier_key(text: str, sig_type: int) -> VerifierKey:
    """`<name>+<8 hex key id>+<base64(type byte || 32-byte Ed25519 key)>`.

    The base64 part may itself contain '+', so only the first two '+' split.
    The hex key id must be 8 lowercase hex digits and equal the key id computed
    from name, type and key (signed-note "Signatures").
    """
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise VerifyError(f"verifier key {text!r}: expected name+keyid+key")
    name, hex_id, key64 = parts
    check_key_name(name)
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
        raise VerifyError(f"verifier key {text!r}: key id is not 8 lowercase hex digits")
    raw = b64decode_strict(key64, f"verifier key {name!r}")
    if len(raw) != 33:
        raise VerifyError(f"verifier key {text!r}: key data is {len(raw)} bytes, want 1+32")
    if raw[0] != sig_type:
        raise VerifyError(f"verifier key {text!r}: type byte 0x{raw[0]:02x}, want 0x{sig_type:02x}")
    pub = raw[1:]
    if ed_decode(pub) is None:
        raise VerifyError(f"verifier key {text!r}: public key is not a valid Ed25519 point")
    want = key_id(name, sig_type, pub)
    if bytes.fromhex(hex_id) != want:
        raise VerifyError(f"verifier key {text!r}: key id {hex_id} != computed {want.hex()}")
    return VerifierKey(name, want, sig_type, pub, text)


def format_verifier_key(name: str, sig_type: int, public_key: bytes) -> str:
    return f"{name}+{key_id(name, sig_type, public_key).hex()}+{b64(bytes([sig_type]) + public_key)}"


# ---------------------------------------------------------------------------
# Checkpoint body, C2SP tlog-checkpoint (gridledger: exactly three lines)
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CheckpointBody:
    origin: str
    size: int
    root: bytes


def parse_checkpoint_body(text: bytes) -> CheckpointBody:
    """`<origin>\\n<decimal size>\\n<base64 32-byte root>\\n`, nothing more."""
    s = text.decode("utf-8")  # already validated by parse_signed_note
    if not s.endswith("\n"):
        raise VerifyError("checkpoint text does not end in a newline")
    lines = s[:-1].split("\n")
    if len(lines) < 3:
        raise VerifyError(f"checkpoint has {len(lines)} lines, needs origin, size and root")
    if len(lines) > 3:
        raise VerifyError(f"checkpoint has {len(lines) - 3} extension line(s); gridledger allows none")
    origin, size_s, root_s = lines
    if not origin:
        raise VerifyError("checkpoint origin is empty")
    size = parse_decimal(size_s, "checkpoint tree size")
    root = b64decode_strict(root_s, "checkpoint root")
    if len(root) != HASH_LEN:
        raise VerifyError(f"checkpoint root is {len(root)} bytes, want {HASH_LEN}")
    if size == 0 and root != EMPTY_ROOT:
        raise VerifyError(f"checkpoint of size 0 has root {root.hex()}, not MTH({{}})")
    return CheckpointBody(origin, size, root)


def format_checkpoint_body(origin: str, size: int, root: bytes) -> bytes:
    return f"{origin}\n{size}\n{b64(root)}\n".encode("utf-8")


# ---------------------------------------------------------------------------
# Cosignatures, C2SP tlog-cosignature (Ed25519, signature type 0x04)
# ---------------------------------------------------------------------------

COSIG_HEADER = b"cosignature/v1\n"
COSIG_MAX_TIMESTAMP = (1 << 63) - 1  # "It MUST NOT exceed 2^63 - 1"


def cosignature_message(timestamp: int, checkpoint_text: bytes) -> bytes:
    """`cosignature/v1\\ntime <decimal>\\n` || the whole checkpoint note text."""
    return COSIG_HEADER + b"time %d\n" % timestamp + checkpoint_text


# ---------------------------------------------------------------------------
# Trust policy
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class TrustPolicy:
    origin: str
    quorum: int
    keys: list[VerifierKey]
    witnesses: list[VerifierKey]
    witness_quorum: int

    def lookup(self, name: str, kid: bytes) -> VerifierKey | None:
        # signed-note: a signature belongs to a key only when BOTH name and key
        # id match; lines matching one but not the other are unknown and ignored.
        for k in self.keys + self.witnesses:
            if k.name == name and k.key_id == kid:
                return k
        return None


_POLICY_FIELDS = {"origin", "quorum", "keys", "witnesses", "witness_quorum"}


def _json_no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    obj: dict = {}
    for k, v in pairs:
        if k in obj:
            raise VerifyError(f"trust policy: duplicate JSON field {k!r}")
        obj[k] = v
    return obj


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_trust_policy(data: bytes) -> TrustPolicy:
    """`{"origin", "quorum", "keys", "witnesses"?, "witness_quorum"?}`, strictly.

    Unknown or duplicated fields are errors: a misspelt "witness_quorum" must
    not silently become 0. A key listed twice (or the same public key under two
    names) would let one signer count twice toward the quorum, so it is refused.
    """
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=_json_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VerifyError(f"trust policy is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise VerifyError("trust policy must be a JSON object")
    unknown = set(obj) - _POLICY_FIELDS
    if unknown:
        raise VerifyError(f"trust policy: unknown field(s) {sorted(unknown)}")
    for field in ("origin", "quorum", "keys"):
        if field not in obj:
            raise VerifyError(f"trust policy: missing field {field!r}")
    origin = obj["origin"]
    if not isinstance(origin, str) or not origin or "\n" in origin:
        raise VerifyError("trust policy: origin must be a non-empty one-line string")

    def key_list(field: str, sig_type: int) -> list[VerifierKey]:
        raw = obj.get(field, [])
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise VerifyError(f"trust policy: {field!r} must be a list of strings")
        keys = [parse_verifier_key(x, sig_type) for x in raw]
        if len({k.public_key for k in keys}) != len(keys):
            raise VerifyError(f"trust policy: {field!r} lists the same public key twice")
        return keys

    keys = key_list("keys", SIG_TYPE_ED25519)
    witnesses = key_list("witnesses", SIG_TYPE_COSIG_V1)
    ids = [(k.name, k.key_id) for k in keys + witnesses]
    if len(set(ids)) != len(ids):
        raise VerifyError("trust policy: two keys share a (name, key id)")
    quorum = obj["quorum"]
    wq = obj.get("witness_quorum", 0)
    if not _is_int(quorum) or not 1 <= quorum <= len(keys):
        raise VerifyError(f"trust policy: quorum must be an integer in 1..{len(keys)}")
    if not _is_int(wq) or not 0 <= wq <= len(witnesses):
        raise VerifyError(f"trust policy: witness_quorum must be an integer in 0..{len(witnesses)}")
    return TrustPolicy(origin, quorum, keys, witnesses, wq)


# ---------------------------------------------------------------------------
# Verification API
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class VerifiedCheckpoint:
    body: CheckpointBody
    text: bytes
    signers: tuple[str, ...]  # verifier-key strings of node keys that verified
    cosigners: tuple[str, ...]  # verifier-key strings of witnesses that verified


def verify_checkpoint(note: bytes, policy: TrustPolicy) -> VerifiedCheckpoint:
    """Verify a signed checkpoint note against a trust policy.

    Every signature line whose (name, key id) matches a configured key must
    verify, otherwise the note is rejected (signed-note "Signatures": clients
    SHOULD reject; we do). Lines from unknown keys are ignored. The policy is met
    when signatures from at least `quorum` distinct node keys and cosignatures
    from at least `witness_quorum` distinct witness keys verify.
    """
    text, sigs = parse_signed_note(note)
    body = parse_checkpoint_body(text)
    if body.origin != policy.origin:
        raise VerifyError(f"checkpoint origin {body.origin!r} != trusted origin {policy.origin!r}")
    signers: dict[str, None] = {}
    cosigners: dict[str, None] = {}
    for s in sigs:
        key = policy.lookup(s.name, s.key_id)
        if key is None:
            continue
        if key.sig_type == SIG_TYPE_ED25519:
            if len(s.sig) != 64 or not ed25519_verify(key.public_key, text, s.sig):
                raise VerifyError(f"signature by configured key {s.name} ({s.key_id.hex()}) does not verify")
            signers[key.text] = None
        else:
            # tlog-cosignature: key id || u64 BE timestamp || 64-byte Ed25519 signature
            if len(s.sig) != 8 + 64:
                raise VerifyError(
                    f"cosignature by {s.name} is {len(s.sig)} bytes after the key id, want 8+64")
            ts = int.from_bytes(s.sig[:8], "big")
            if ts > COSIG_MAX_TIMESTAMP:
                raise VerifyError(f"cosignature by {s.name}: timestamp {ts} exceeds 2^63-1")
            if not ed25519_verify(key.public_key, cosignature_message(ts, text), s.sig[8:]):
                raise VerifyError(f"cosignature by configured witness {s.name} ({s.key_id.hex()}) does not verify")
            cosigners[key.text] = None
    if len(signers) < policy.quorum:
        raise VerifyError(
            f"only {len(signers)} distinct configured node key(s) signed, quorum is {policy.quorum}")
    if len(cosigners) < policy.witness_quorum:
        raise VerifyError(
            f"only {len(cosigners)} distinct configured witness(es) cosigned, "
            f"witness quorum is {policy.witness_quorum}")
    return VerifiedCheckpoint(body, text, tuple(signers), tuple(cosigners))


RECEIPT_HEADER = "c2sp.org/tlog-proof@v1"


@dataclasses.dataclass(frozen=True)
class Receipt:
    extra: bytes  # gridledger: the exact leaf bytes
    index: int
    path: list[bytes]
    note: bytes  # the signed checkpoint, verbatim


def parse_receipt(data: bytes) -> Receipt:
    """C2SP tlog-proof, gridledger profile (the `extra` line is mandatory).

    c2sp.org/tlog-proof@v1\\n
    extra <base64 leaf bytes>\\n
    index <decimal>\\n
    <base64 hash>\\n   (zero or more, leaf sibling first)
    \\n
    <signed checkpoint note, verbatim to the end of the file>
    """
    sep = data.find(b"\n\n")
    if sep < 0:
        raise VerifyError("receipt: no empty line before the checkpoint")
    head, note = data[:sep], data[sep + 2:]
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise VerifyError("receipt: proof lines are not ASCII") from None
    if lines[0] != RECEIPT_HEADER:
        raise VerifyError(f"receipt: first line is {lines[0]!r}, want {RECEIPT_HEADER!r}")
    if len(lines) < 2 or not lines[1].startswith("extra "):
        raise VerifyError("receipt: missing 'extra <base64 leaf>' line (required by gridledger)")
    extra = b64decode_strict(lines[1][len("extra "):], "receipt extra")
    if len(lines) < 3 or not lines[2].startswith("index "):
        raise VerifyError("receipt: missing 'index N' line after 'extra'")
    index = parse_decimal(lines[2][len("index "):], "receipt index")
    path = []
    for i, line in enumerate(lines[3:]):
        h = b64decode_strict(line, f"receipt proof hash {i}")
        if len(h) != HASH_LEN:
            raise VerifyError(f"receipt proof hash {i} is {len(h)} bytes, want {HASH_LEN}")
        path.append(h)
    return Receipt(extra, index, path, note)


@dataclasses.dataclass(frozen=True)
class VerifiedReceipt:
    checkpoint: VerifiedCheckpoint
    index: int
    leaf: bytes


def verify_receipt(data: bytes, policy: TrustPolicy) -> VerifiedReceipt:
    r = parse_receipt(data)
    cp = verify_checkpoint(r.note, policy)
    verify_inclusion(r.index, cp.body.size, leaf_hash(r.extra), r.path, cp.body.root)
    return VerifiedReceipt(cp, r.index, r.extra)


def parse_proof_file(data: bytes) -> list[bytes]:
    """One base64 hash per line; an empty file is an empty proof; one trailing
    newline is allowed; nothing else (no blank lines, no spaces, no CR)."""
    try:
        s = data.decode("ascii")
    except UnicodeDecodeError:
        raise VerifyError("proof file is not ASCII") from None
    if s.endswith("\n"):
        s = s[:-1]
    if not s:
        return []
    out = []
    for i, line in enumerate(s.split("\n")):
        h = b64decode_strict(line, f"proof line {i + 1}")
        if len(h) != HASH_LEN:
            raise VerifyError(f"proof line {i + 1} is {len(h)} bytes, want {HASH_LEN}")
        out.append(h)
    return out


def verify_checkpoint_consistency(old_note: bytes, new_note: bytes, proof: bytes,
                                  policy: TrustPolicy) -> tuple[VerifiedCheckpoint, VerifiedCheckpoint]:
    old = verify_checkpoint(old_note, policy)
    new = verify_checkpoint(new_note, policy)
    verify_consistency(old.body.size, new.body.size, old.body.root, new.body.root,
                       parse_proof_file(proof))
    return old, new


# ---------------------------------------------------------------------------
# Signing helpers (self-test only: build notes, cosignatures and receipts)
# ---------------------------------------------------------------------------

def signature_line(name: str, blob: bytes) -> bytes:
    return f"{SIG_PREFIX}{name} {b64(blob)}\n".encode("utf-8")


def note_signature_line(name: str, seed: bytes, text: bytes) -> bytes:
    pub = ed25519_public_key(seed)
    return signature_line(name, key_id(name, SIG_TYPE_ED25519, pub) + ed25519_sign(seed, text))


def cosignature_line(name: str, seed: bytes, text: bytes, timestamp: int) -> bytes:
    pub = ed25519_public_key(seed)
    sig = ed25519_sign(seed, cosignature_message(timestamp, text))
    return signature_line(name, key_id(name, SIG_TYPE_COSIG_V1, pub) + timestamp.to_bytes(8, "big") + sig)


def format_receipt(extra: bytes, index: int, path: Sequence[bytes], note: bytes) -> bytes:
    lines = [RECEIPT_HEADER, "extra " + b64(extra), f"index {index}"] + [b64(h) for h in path]
    return ("\n".join(lines) + "\n\n").encode("ascii") + note


# ---------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------

def testdata_dir() -> str:
    """$GRIDLEDGER_SHARED_TESTDATA, else <repo>/../shared/testdata where the
    script lives at <repo>/tests/verifier/."""
    env = os.environ.get("GRIDLEDGER_SHARED_TESTDATA")
    if env:
        return env
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.normpath(os.path.join(repo, "..", "shared", "testdata"))


class _Checks:
    def __init__(self, verbose: bool) -> None:
        self.passed = 0
        self.failed = 0
        self.verbose = verbose

    def ok(self, name: str, cond: bool, detail: str = "") -> None:
        if cond:
            self.passed += 1
            if self.verbose:
                print(f"ok   {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}{': ' + detail if detail else ''}")

    def accepts(self, name: str, fn: Callable[[], object]) -> object:
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - any exception is a failed check
            self.ok(name, False, f"unexpected {type(e).__name__}: {e}")
            return None
        self.ok(name, True)
        return result

    def rejects(self, name: str, fn: Callable[[], object]) -> None:
        """Passes only on VerifyError; success or any other exception fails."""
        try:
            fn()
        except VerifyError as e:
            self.ok(name, True)
            if self.verbose:
                print(f"       ({e})")
            return
        except Exception as e:  # noqa: BLE001
            self.ok(name, False, f"raised {type(e).__name__} instead of VerifyError: {e}")
            return
        self.ok(name, False, "was accepted")


def _flip(h: bytes, bit: int) -> bytes:
    b = bytearray(h)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


_FLIP_BITS = (0, 7, 131, 255)  # first byte low/high bit, a middle bit, last bit


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"gridledger-verifier-selftest/" + label.encode()).digest()


def _test_ed25519(c: _Checks) -> None:
    # RFC 8032 section 7.1, TEST 1-3 (secret key, public key, message, signature).
    vectors = [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
         "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
         "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ]
    for i, (sk, pk, msg, sig) in enumerate(vectors, 1):
        seed, pub, m, s = (bytes.fromhex(x) for x in (sk, pk, msg, sig))
        c.ok(f"ed25519 RFC 8032 test {i}: public key", ed25519_public_key(seed) == pub)
        c.ok(f"ed25519 RFC 8032 test {i}: signature", ed25519_sign(seed, m) == s)
        c.ok(f"ed25519 RFC 8032 test {i}: verifies", ed25519_verify(pub, m, s))
        c.ok(f"ed25519 RFC 8032 test {i}: other message fails", not ed25519_verify(pub, m + b"x", s))
        c.ok(f"ed25519 RFC 8032 test {i}: flipped R fails", not ed25519_verify(pub, m, _flip(s, 3)))
        c.ok(f"ed25519 RFC 8032 test {i}: flipped S fails", not ed25519_verify(pub, m, _flip(s, 300)))
        S = int.from_bytes(s[32:], "little")
        c.ok(f"ed25519 RFC 8032 test {i}: non-canonical S+L rejected",
             not ed25519_verify(pub, m, s[:32] + (S + ED_L).to_bytes(32, "little")))
    # Decoding failures of RFC 8032 section 5.1.3.
    c.ok("ed25519: y >= p rejected (y = p+1)", ed_decode((ED_P + 1).to_bytes(32, "little")) is None)
    c.ok("ed25519: x = 0 with sign bit rejected",
         ed_decode((1 | (1 << 255)).to_bytes(32, "little")) is None)
    c.ok("ed25519: identity with sign bit 0 accepted", ed_decode((1).to_bytes(32, "little")) is not None)
    c.ok("ed25519: wrong-length key rejected", not ed25519_verify(b"\x00" * 31, b"", b"\x00" * 64))
    c.ok("ed25519: wrong-length signature rejected",
         not ed25519_verify(bytes.fromhex(vectors[0][1]), b"", bytes.fromhex(vectors[0][3])[:63]))


def _test_merkle(c: _Checks, mv: dict) -> None:
    leaves = [bytes.fromhex(x) for x in mv["leaves_hex"]]
    lh = [leaf_hash(x) for x in leaves]
    roots = {r["tree_size"]: bytes.fromhex(r["root"]) for r in mv["roots"]}
    c.ok("merkle: empty tree root is SHA-256('')", roots.get(0) == EMPTY_ROOT)
    for n, root in sorted(roots.items()):
        c.ok(f"merkle: root of size {n}", merkle_root(lh[:n]) == root,
             f"{merkle_root(lh[:n]).hex()} != {root.hex()}")

    def wrong_size_rejects(name: str, proof: list[bytes], ok_proof: Callable[[], list[bytes]],
                           fn: Callable[[], None]) -> None:
        # A mutated claim with the proof of the original claim must fail, except
        # where the original proof happens to be the correct proof of the mutated
        # (still true) claim, which is then correctly accepted.
        try:
            same = ok_proof() == proof
        except ValueError:
            same = False
        if same:
            c.accepts(name + " (same proof proves it)", fn)
        else:
            c.rejects(name, fn)

    # --- inclusion vectors, RFC 9162 section 2.1.3 ---------------------------
    for v in mv["inclusion"]:
        i, n = v["leaf_index"], v["tree_size"]
        path = [bytes.fromhex(x) for x in v["path"]]
        tag = f"inclusion {i} of {n}"
        c.ok(f"{tag}: generated path equals vector", inclusion_path(i, lh[:n]) == path)
        c.ok(f"{tag}: expected length", inclusion_path_len(i, n) == len(path))
        c.accepts(f"{tag}: verifies", lambda: verify_inclusion(i, n, lh[i], path, roots[n]))
        for j in range(len(path)):
            for bit in _FLIP_BITS:
                bad = path[:j] + [_flip(path[j], bit)] + path[j + 1:]
                c.rejects(f"{tag}: bit {bit} flipped in element {j}",
                          lambda: verify_inclusion(i, n, lh[i], bad, roots[n]))
        if path:
            c.rejects(f"{tag}: truncated", lambda: verify_inclusion(i, n, lh[i], path[:-1], roots[n]))
            c.rejects(f"{tag}: truncated (RFC algorithm alone)",
                      lambda: rfc9162_inclusion_root(i, n, lh[i], path[:-1]) == roots[n] or _raise())
            c.rejects(f"{tag}: first element dropped",
                      lambda: verify_inclusion(i, n, lh[i], path[1:], roots[n]))
        extra = path + [roots[n]]
        c.rejects(f"{tag}: extra element", lambda: verify_inclusion(i, n, lh[i], extra, roots[n]))
        c.rejects(f"{tag}: extra element (RFC algorithm alone)",
                  lambda: rfc9162_inclusion_root(i, n, lh[i], extra) == roots[n] or _raise())
        c.rejects(f"{tag}: wrong leaf", lambda: verify_inclusion(i, n, lh[(i + 1) % 8], path, roots[n]))
        c.rejects(f"{tag}: raw leaf instead of leaf hash",
                  lambda: verify_inclusion(i, n, hashlib.sha256(leaves[i]).digest(), path, roots[n]))
        other_root = roots[n - 1] if n > 1 else roots[2]
        c.rejects(f"{tag}: wrong root", lambda: verify_inclusion(i, n, lh[i], path, other_root))
        c.rejects(f"{tag}: index = size", lambda: verify_inclusion(n, n, lh[i], path, roots[n]))
        for n2 in (n - 1, n + 1):
            if n2 in roots and 0 <= i < n2:
                wrong_size_rejects(f"{tag}: claimed size {n2}", path,
                                   lambda: inclusion_path(i, lh[:n2]),
                                   lambda: verify_inclusion(i, n2, lh[i], path, roots[n2]))
        for i2 in (i - 1, i + 1):
            if 0 <= i2 < n:
                wrong_size_rejects(f"{tag}: claimed index {i2}", path,
                                   lambda: inclusion_path(i2, lh[:n]),
                                   lambda: verify_inclusion(i2, n, lh[i], path, roots[n]))
    c.rejects("inclusion: empty tree", lambda: verify_inclusion(0, 0, lh[0], [], EMPTY_ROOT))
    c.rejects("inclusion: 31-byte path element",
              lambda: verify_inclusion(0, 2, lh[0], [lh[1][:31]], roots[2]))

    # --- consistency vectors, RFC 9162 section 2.1.4 -------------------------
    for v in mv["consistency"]:
        m, n = v["old_size"], v["new_size"]
        proof = [bytes.fromhex(x) for x in v["path"]]
        tag = f"consistency {m} -> {n}"
        c.ok(f"{tag}: generated proof equals vector", consistency_proof(m, lh[:n]) == proof)
        c.ok(f"{tag}: expected length", consistency_proof_len(m, n) == len(proof))
        c.accepts(f"{tag}: verifies", lambda: verify_consistency(m, n, roots[m], roots[n], proof))
        for j in range(len(proof)):
            for bit in _FLIP_BITS:
                bad = proof[:j] + [_flip(proof[j], bit)] + proof[j + 1:]
                c.rejects(f"{tag}: bit {bit} flipped in element {j}",
                          lambda: verify_consistency(m, n, roots[m], roots[n], bad))
        if proof:
            c.rejects(f"{tag}: truncated", lambda: verify_consistency(m, n, roots[m], roots[n], proof[:-1]))
            if len(proof) > 1:
                c.rejects(f"{tag}: truncated (RFC algorithm alone)",
                          lambda: rfc9162_consistency(m, n, roots[m], roots[n], proof[:-1]))
            c.rejects(f"{tag}: first element dropped",
                      lambda: verify_consistency(m, n, roots[m], roots[n], proof[1:]))
        extra = proof + [roots[n]]
        c.rejects(f"{tag}: extra element", lambda: verify_consistency(m, n, roots[m], roots[n], extra))
        if m < n:
            c.rejects(f"{tag}: extra element (RFC algorithm alone)",
                      lambda: rfc9162_consistency(m, n, roots[m], roots[n], extra))
            c.rejects(f"{tag}: swapped roots", lambda: verify_consistency(m, n, roots[n], roots[m], proof))
            c.rejects(f"{tag}: swapped sizes", lambda: verify_consistency(n, m, roots[n], roots[m], proof))
            c.rejects(f"{tag}: wrong old root",
                      lambda: verify_consistency(m, n, roots[m - 1] if m > 1 else roots[n], roots[n], proof))
            c.rejects(f"{tag}: wrong new root", lambda: verify_consistency(m, n, roots[m], roots[n - 1], proof))
        else:
            c.rejects(f"{tag}: equal sizes, different roots",
                      lambda: verify_consistency(m, n, roots[m], roots[m - 1] if m > 1 else roots[2], proof))
        for m2, n2 in ((m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1)):
            if 1 <= m2 <= n2 and n2 in roots and (m2, n2) != (m, n):
                wrong_size_rejects(f"{tag}: claimed sizes {m2} -> {n2}", proof,
                                   lambda: consistency_proof(m2, lh[:n2]),
                                   lambda: verify_consistency(m2, n2, roots[m2], roots[n2], proof))
    c.rejects("consistency: old size > new size", lambda: verify_consistency(5, 3, roots[5], roots[3], []))
    c.accepts("consistency: 0 -> 5 with empty proof",
              lambda: verify_consistency(0, 5, EMPTY_ROOT, roots[5], []))
    c.rejects("consistency: 0 -> 5 with non-empty proof",
              lambda: verify_consistency(0, 5, EMPTY_ROOT, roots[5], [roots[5]]))
    c.rejects("consistency: 0 -> 5 with old root not MTH({})",
              lambda: verify_consistency(0, 5, roots[1], roots[5], []))
    c.rejects("consistency: equal sizes with non-empty proof",
              lambda: verify_consistency(4, 4, roots[4], roots[4], [roots[4]]))

    # --- large tree ----------------------------------------------------------
    lg = mv["large"]
    big = [leaf_hash(f"leaf-{i}".encode("ascii")) for i in range(1000)]
    root_1000, root_333 = bytes.fromhex(lg["root_1000"]), bytes.fromhex(lg["root_333"])
    c.ok("large: root_1000", merkle_root(big) == root_1000)
    c.ok("large: root_333", merkle_root(big[:333]) == root_333)
    incl = [bytes.fromhex(x) for x in lg["inclusion_517_of_1000"]]
    cons = [bytes.fromhex(x) for x in lg["consistency_333_to_1000"]]
    c.ok("large: generated inclusion 517/1000 equals vector", inclusion_path(517, big) == incl)
    c.ok("large: generated consistency 333->1000 equals vector", consistency_proof(333, big) == cons)
    c.accepts("large: inclusion 517 of 1000 verifies",
              lambda: verify_inclusion(517, 1000, big[517], incl, root_1000))
    c.accepts("large: consistency 333 -> 1000 verifies",
              lambda: verify_consistency(333, 1000, root_333, root_1000, cons))
    for j in range(len(incl)):
        bad = incl[:j] + [_flip(incl[j], 77)] + incl[j + 1:]
        c.rejects(f"large: inclusion bit flip in element {j}",
                  lambda: verify_inclusion(517, 1000, big[517], bad, root_1000))
    for j in range(len(cons)):
        bad = cons[:j] + [_flip(cons[j], 77)] + cons[j + 1:]
        c.rejects(f"large: consistency bit flip in element {j}",
                  lambda: verify_consistency(333, 1000, root_333, root_1000, bad))
    c.rejects("large: inclusion truncated", lambda: verify_inclusion(517, 1000, big[517], incl[:-1], root_1000))
    c.rejects("large: inclusion extra", lambda: verify_inclusion(517, 1000, big[517], incl + [root_1000], root_1000))
    c.rejects("large: inclusion wrong leaf", lambda: verify_inclusion(517, 1000, big[518], incl, root_1000))
    c.rejects("large: inclusion wrong index", lambda: verify_inclusion(516, 1000, big[517], incl, root_1000))
    c.rejects("large: inclusion wrong size",
              lambda: verify_inclusion(517, 999, big[517], incl, merkle_root(big[:999])))
    c.rejects("large: consistency truncated",
              lambda: verify_consistency(333, 1000, root_333, root_1000, cons[:-1]))
    c.rejects("large: consistency extra",
              lambda: verify_consistency(333, 1000, root_333, root_1000, cons + [root_1000]))
    c.rejects("large: consistency swapped roots",
              lambda: verify_consistency(333, 1000, root_1000, root_333, cons))
    c.rejects("large: consistency wrong old size",
              lambda: verify_consistency(334, 1000, merkle_root(big[:334]), root_1000, cons))
    c.rejects("large: consistency wrong new size",
              lambda: verify_consistency(333, 999, root_333, merkle_root(big[:999]), cons))
    # Every size pair and index of a 1..40-leaf tree: generator, length
    # function and verifier agree (an independent re-check of the RFC recursion).
    agree = True
    for n in range(1, 41):
        rn = merkle_root(big[:n])
        for i in range(n):
            p = inclusion_path(i, big[:n])
            agree &= len(p) == inclusion_path_len(i, n)
            agree &= rfc9162_inclusion_root(i, n, big[i], p) == rn
        for m in range(1, n + 1):
            p = consistency_proof(m, big[:n])
            agree &= len(p) == consistency_proof_len(m, n)
            try:
                verify_consistency(m, n, merkle_root(big[:m]), rn, p)
            except VerifyError:
                agree = False
    c.ok("merkle: all proofs of trees 1..40 verify and have the computed length", agree)


def _raise() -> None:
    raise VerifyError("computed root differs")


def _test_signed_note_vector(c: _Checks, nv: dict, mv: dict) -> None:
    seed = bytes.fromhex(nv["private_key_seed_hex"])
    pub = bytes.fromhex(nv["public_key_hex"])
    name = nv["key_name"]
    c.ok("note vector: public key derived from seed", ed25519_public_key(seed) == pub)
    c.ok("note vector: verifier key string",
         format_verifier_key(name, SIG_TYPE_ED25519, pub) == nv["verifier_key"],
         format_verifier_key(name, SIG_TYPE_ED25519, pub))
    vk = c.accepts("note vector: verifier key parses",
                   lambda: parse_verifier_key(nv["verifier_key"], SIG_TYPE_ED25519))
    c.ok("note vector: key id", vk is not None and vk.key_id == key_id(name, SIG_TYPE_ED25519, pub)
         and nv["verifier_key"].split("+")[1] == vk.key_id.hex())
    note = nv["note"].encode("utf-8")
    text, sigs = parse_signed_note(note)
    c.ok("note vector: one signature line", len(sigs) == 1 and sigs[0].name == name)
    c.ok("note vector: signature line key id", sigs[0].key_id == key_id(name, SIG_TYPE_ED25519, pub))
    c.ok("note vector: signature verifies", ed25519_verify(pub, text, sigs[0].sig))
    c.ok("note vector: signature is the deterministic RFC 8032 one", ed25519_sign(seed, text) == sigs[0].sig)
    c.ok("note vector: signature line re-created byte for byte",
         text + b"\n" + note_signature_line(name, seed, text) == note)
    body = parse_checkpoint_body(text)
    c.ok("note vector: checkpoint size and root",
         body.size == nv["tree_size"] and body.root.hex() == nv["root_hex"])
    roots = {r["tree_size"]: r["root"] for r in mv["roots"]}
    if nv["tree_size"] in roots:
        c.ok("note vector: root equals the Merkle vector root", roots[nv["tree_size"]] == nv["root_hex"])
    policy = parse_trust_policy(json.dumps(
        {"origin": body.origin, "quorum": 1, "keys": [nv["verifier_key"]]}).encode())
    cp = c.accepts("note vector: checkpoint verifies against a 1-of-1 policy",
                   lambda: verify_checkpoint(note, policy))
    c.ok("note vector: one signer counted", cp is not None and len(cp.signers) == 1)
    other = format_verifier_key(name, SIG_TYPE_ED25519, ed25519_public_key(_seed("impostor")))
    wrong_policy = parse_trust_policy(json.dumps(
        {"origin": body.origin, "quorum": 1, "keys": [other]}).encode())
    c.rejects("note vector: wrong key (same name) -> no quorum", lambda: verify_checkpoint(note, wrong_policy))
    c.rejects("note vector: wrong origin in policy", lambda: verify_checkpoint(
        note, parse_trust_policy(json.dumps(
            {"origin": "example.org/other", "quorum": 1, "keys": [nv["verifier_key"]]}).encode())))
    tampered = note.replace(b"\n8\n", b"\n9\n", 1)
    c.rejects("note vector: signature over a modified body", lambda: verify_checkpoint(tampered, policy))


def _test_external_vectors(c: _Checks) -> None:
    """Known answers published by other implementations (data only, no code):
    golang.org/x/mod/sumdb/note (example in its package doc and tests) and
    transparency-dev/formats note/note_cosigv1_test.go."""
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    text = (b"If you think cryptography is the answer to your problem,\n"
            b"then you don't know what your problem is.\n")
    note = text + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n".encode()
    k = c.accepts("go note: verifier key parses", lambda: parse_verifier_key(vkey, SIG_TYPE_ED25519))
    seed = base64.b64decode(skey.split("+", 4)[4])[1:]
    c.ok("go note: public key from the Go signer key's seed",
         k is not None and ed25519_public_key(seed) == k.public_key)
    got_text, sigs = parse_signed_note(note)
    c.ok("go note: text split", got_text == text and len(sigs) == 1 and sigs[0].name == "PeterNeumann")
    c.ok("go note: signature verifies", k is not None and sigs[0].key_id == k.key_id
         and ed25519_verify(k.public_key, text, sigs[0].sig))
    c.ok("go note: signature line re-created byte for byte",
         text + b"\n" + note_signature_line("PeterNeumann", seed, text) == note)
    c.ok("go note: modified text fails", k is not None and not ed25519_verify(
        k.public_key, text.replace(b"cryptography", b"cryptographY"), sigs[0].sig))
    c.accepts("formats: type-0x01 verifier key whose base64 contains '+'",
              lambda: parse_verifier_key("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6",
                                         SIG_TYPE_ED25519))
    c.accepts("formats: type-0x04 (cosignature) verifier key and key id",
              lambda: parse_verifier_key("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
                                         SIG_TYPE_COSIG_V1))
    blob = b64decode_strict("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==", "cosig")
    c.ok("formats: cosignature blob = key id (4) || u64 BE time || sig (64)",
         len(blob) == 4 + 8 + 64 and int.from_bytes(blob[4:12], "big") == 1727964367)


class _Fixture:
    """A small self-made ledger: the 8 vector leaves, three node keys, two witnesses."""

    ORIGIN = "example.org/gridledger/metering"

    def __init__(self, mv: dict, nv: dict) -> None:
        self.leaves = [bytes.fromhex(x) for x in mv["leaves_hex"]]
        self.lh = [leaf_hash(x) for x in self.leaves]
        self.nodes = [(nv["key_name"], bytes.fromhex(nv["private_key_seed_hex"]))] + [
            (f"{self.ORIGIN}/node-{i}", _seed(f"node-{i}")) for i in (2, 3)]
        self.witnesses = [(f"witness-{i}.example", _seed(f"witness-{i}")) for i in (1, 2)]
        self.node_vkeys = [format_verifier_key(n, SIG_TYPE_ED25519, ed25519_public_key(s)) for n, s in self.nodes]
        self.witness_vkeys = [format_verifier_key(n, SIG_TYPE_COSIG_V1, ed25519_public_key(s))
                              for n, s in self.witnesses]

    def policy_json(self, **over: object) -> bytes:
        obj: dict = {"origin": self.ORIGIN, "quorum": 2, "keys": self.node_vkeys,
                     "witnesses": self.witness_vkeys, "witness_quorum": 1}
        obj.update(over)
        return json.dumps(obj).encode()

    def policy(self, **over: object) -> TrustPolicy:
        return parse_trust_policy(self.policy_json(**over))

    def text(self, size: int, origin: str | None = None) -> bytes:
        return format_checkpoint_body(origin or self.ORIGIN, size, merkle_root(self.lh[:size]))

    def note(self, size: int, nodes: Sequence[int] = (0, 1, 2), witnesses: Sequence[int] = (0, 1),
             text: bytes | None = None, ts: int = 1_700_000_000) -> bytes:
        text = text if text is not None else self.text(size)
        out = text + b"\n"
        for i in nodes:
            out += note_signature_line(*self.nodes[i], text)
        for i in witnesses:
            out += cosignature_line(*self.witnesses[i], text, ts + i)
        return out

    def receipt(self, index: int, size: int, note: bytes | None = None) -> bytes:
        return format_receipt(self.leaves[index], index, inclusion_path(index, self.lh[:size]),
                              note if note is not None else self.note(size))


def _test_checkpoints(c: _Checks, fx: _Fixture) -> None:
    pol = fx.policy()
    good = fx.note(8)
    cp = c.accepts("checkpoint: 3 node sigs + 2 cosigs verify", lambda: verify_checkpoint(good, pol))
    c.ok("checkpoint: counts 3 signers and 2 cosigners",
         cp is not None and len(cp.signers) == 3 and len(cp.cosigners) == 2)
    c.accepts("checkpoint: exactly the quorum (2 + 1)", lambda: verify_checkpoint(fx.note(8, (0, 2), (1,)), pol))
    c.rejects("checkpoint: 1 node signature < quorum 2", lambda: verify_checkpoint(fx.note(8, (1,)), pol))
    c.rejects("checkpoint: no cosignature < witness quorum 1", lambda: verify_checkpoint(fx.note(8, (0, 1), ()), pol))
    c.accepts("checkpoint: no witnesses needed when witness_quorum 0",
              lambda: verify_checkpoint(fx.note(8, (0, 1), ()), fx.policy(witness_quorum=0)))
    text = fx.text(8)
    dup = text + b"\n" + note_signature_line(*fx.nodes[0], text) * 2 + cosignature_line(*fx.witnesses[0], text, 5)
    c.rejects("checkpoint: the same key twice does not make a quorum of 2", lambda: verify_checkpoint(dup, pol))
    dupw = fx.note(8, (0, 1), ()) + cosignature_line(*fx.witnesses[0], text, 5) + cosignature_line(
        *fx.witnesses[0], text, 6)
    c.rejects("checkpoint: the same witness twice does not make a witness quorum of 2",
              lambda: verify_checkpoint(dupw, fx.policy(witness_quorum=2)))
    # unknown keys are ignored (signed-note), whatever their content
    stranger = note_signature_line("someone.example/else", _seed("stranger"), b"other text\n")
    c.accepts("checkpoint: unknown signer (bad signature) is ignored", lambda: verify_checkpoint(good + stranger, pol))
    impostor_seed = _seed("impostor")
    same_name = note_signature_line(fx.nodes[1][0], impostor_seed, text)
    c.accepts("checkpoint: same name, other key id is ignored", lambda: verify_checkpoint(good + same_name, pol))
    c.rejects("checkpoint: signatures only from a key not in the policy",
              lambda: verify_checkpoint(text + b"\n" + same_name + note_signature_line(*fx.nodes[0], text), pol))
    # a configured key whose signature fails makes the note invalid
    other_text = fx.text(7)
    forged = good + signature_line(fx.nodes[1][0], key_id(fx.nodes[1][0], SIG_TYPE_ED25519,
                                                            ed25519_public_key(fx.nodes[1][1]))
                                   + ed25519_sign(fx.nodes[1][1], other_text))
    c.rejects("checkpoint: configured key signed a different body", lambda: verify_checkpoint(forged, pol))
    lines = good.split(b"\n")
    sig_line = lines[4].decode()
    blob = base64.b64decode(sig_line.split(" ")[2])
    S = int.from_bytes(blob[4 + 32:], "little")
    malleated = blob[:4 + 32] + (S + ED_L).to_bytes(32, "little")
    note_mall = b"\n".join(lines[:4]) + b"\n" + f"\u2014 {fx.nodes[0][0]} {b64(malleated)}\n".encode() \
        + note_signature_line(*fx.nodes[1], text) + cosignature_line(*fx.witnesses[0], text, 1)
    c.rejects("checkpoint: non-canonical S (S+L) from a configured key", lambda: verify_checkpoint(note_mall, pol))
    for bit in (0, 40, 300, 520):
        flipped = _flip(blob, bit)
        bad = good.replace(sig_line.encode(), f"\u2014 {fx.nodes[0][0]} {b64(flipped)}".encode())
        if bit < 32:  # flips in the key id turn the line into an unknown key: ignored
            c.accepts(f"checkpoint: bit {bit} flipped in key id -> line ignored", lambda: verify_checkpoint(bad, pol))
        else:
            c.rejects(f"checkpoint: bit {bit} flipped in signature", lambda: verify_checkpoint(bad, pol))
    c.rejects("checkpoint: signature truncated by one byte", lambda: verify_checkpoint(
        good.replace(sig_line.encode(), f"\u2014 {fx.nodes[0][0]} {b64(blob[:-1])}".encode()), pol))
    # body tampering after signing
    c.rejects("checkpoint: size changed after signing", lambda: verify_checkpoint(good.replace(b"\n8\n", b"\n7\n", 1), pol))
    c.rejects("checkpoint: origin changed after signing",
              lambda: verify_checkpoint(good.replace(fx.ORIGIN.encode(), fx.ORIGIN.encode() + b"x", 1),
                                        fx.policy(origin=fx.ORIGIN + "x")))
    c.rejects("checkpoint: wrong origin for the policy",
              lambda: verify_checkpoint(fx.note(8, text=fx.text(8, "example.org/other")), pol))

    # strict formats, each note correctly signed by everyone so only the format is wrong
    def signed(t: bytes) -> bytes:
        return fx.note(0, text=t)

    root8 = b64(merkle_root(fx.lh)).encode()
    origin = fx.ORIGIN.encode()
    c.rejects("checkpoint: extension line", lambda: verify_checkpoint(signed(fx.text(8) + b"ext\n"), pol))
    c.rejects("checkpoint: leading zero in size",
              lambda: verify_checkpoint(signed(origin + b"\n08\n" + root8 + b"\n"), pol))
    c.rejects("checkpoint: '+8' size", lambda: verify_checkpoint(signed(origin + b"\n+8\n" + root8 + b"\n"), pol))
    c.rejects("checkpoint: size > 2^64-1",
              lambda: verify_checkpoint(signed(origin + b"\n18446744073709551616\n" + root8 + b"\n"), pol))
    c.rejects("checkpoint: unpadded base64 root",
              lambda: verify_checkpoint(signed(origin + b"\n8\n" + root8.rstrip(b"=") + b"\n"), pol))
    c.rejects("checkpoint: URL-safe base64 root", lambda: verify_checkpoint(signed(
        origin + b"\n8\n" + base64.urlsafe_b64encode(merkle_root(fx.lh)) + b"\n"), pol))
    noncanon = root8[:-2] + bytes([root8[-2] ^ 1]) + b"="  # flips a padding bit of the last char
    c.rejects("checkpoint: non-canonical base64 root (padding bits)",
              lambda: verify_checkpoint(signed(origin + b"\n8\n" + noncanon + b"\n"), pol))
    c.rejects("checkpoint: hex root",
              lambda: verify_checkpoint(signed(origin + b"\n8\n" + merkle_root(fx.lh).hex().encode() + b"\n"), pol))
    c.rejects("checkpoint: 31-byte root",
              lambda: verify_checkpoint(signed(origin + b"\n8\n" + b64(merkle_root(fx.lh)[:31]).encode() + b"\n"), pol))
    c.rejects("checkpoint: size 0 with a non-empty root",
              lambda: verify_checkpoint(signed(origin + b"\n0\n" + root8 + b"\n"), pol))
    c.accepts("checkpoint: size 0 with MTH({})", lambda: verify_checkpoint(signed(fx.text(0)), pol))
    c.rejects("checkpoint: missing root line", lambda: verify_checkpoint(signed(origin + b"\n8\n"), pol))
    c.rejects("checkpoint: 5000-digit size", lambda: verify_checkpoint(
        signed(origin + b"\n" + b"9" * 5000 + b"\n" + root8 + b"\n"), pol))
    c.rejects("checkpoint: non-ASCII digit in size",
              lambda: verify_checkpoint(signed(origin + "\n\u0668\n".encode() + root8 + b"\n"), pol))
    c.rejects("checkpoint: trailing space on size", lambda: verify_checkpoint(signed(origin + b"\n8 \n" + root8 + b"\n"), pol))
    # signed-note framing
    c.rejects("note: CRLF line endings", lambda: verify_checkpoint(good.replace(b"\n", b"\r\n"), pol))
    c.rejects("note: no final newline", lambda: verify_checkpoint(good[:-1], pol))
    c.rejects("note: trailing blank line", lambda: verify_checkpoint(good + b"\n", pol))
    c.rejects("note: trailing garbage line", lambda: verify_checkpoint(good + b"garbage\n", pol))
    c.rejects("note: no blank line", lambda: verify_checkpoint(good.replace(b"\n\n", b"\n", 1), pol))
    c.rejects("note: no signatures", lambda: verify_checkpoint(fx.text(8) + b"\n", pol))
    c.rejects("note: hyphen instead of em dash", lambda: verify_checkpoint(good.replace("\u2014".encode(), b"-"), pol))
    c.rejects("note: en dash instead of em dash", lambda: verify_checkpoint(good.replace("\u2014".encode(), "\u2013".encode()), pol))
    c.rejects("note: tab in text", lambda: verify_checkpoint(fx.note(8, text=fx.text(8, fx.ORIGIN + "\t")), pol))
    c.rejects("note: invalid UTF-8", lambda: verify_checkpoint(b"\xff" + good, pol))
    c.rejects("note: signature line with bad base64", lambda: verify_checkpoint(good + "\u2014 x.example abc!\n".encode(), pol))
    c.rejects("note: signature line with '+' in key name",
              lambda: verify_checkpoint(good + signature_line("a+b", b"12345"), pol))
    c.rejects("note: signature line with empty key name", lambda: verify_checkpoint(good + signature_line("", b"12345"), pol))
    c.rejects("note: signature shorter than 5 bytes", lambda: verify_checkpoint(good + signature_line("x.example", b"1234"), pol))
    c.rejects("note: two spaces after the key name",
              lambda: verify_checkpoint(good.replace(f"{fx.nodes[0][0]} ".encode(), f"{fx.nodes[0][0]}  ".encode()), pol))
    c.rejects("note: more than 100 signatures", lambda: verify_checkpoint(good + stranger * 100, pol))

    # cosignatures (tlog-cosignature, type 0x04)
    wname, wseed = fx.witnesses[0]
    wpub = ed25519_public_key(wseed)
    wkid = key_id(wname, SIG_TYPE_COSIG_V1, wpub)
    base = fx.note(8, (0, 1), ())
    ts = 1_712_345_678

    def cos(blob: bytes) -> bytes:
        return base + signature_line(wname, blob)

    good_sig = ed25519_sign(wseed, cosignature_message(ts, text))
    c.accepts("cosig: valid", lambda: verify_checkpoint(cos(wkid + ts.to_bytes(8, "big") + good_sig), pol))
    c.ok("cosig: message layout", cosignature_message(ts, text) ==
         b"cosignature/v1\ntime 1712345678\n" + text)
    c.rejects("cosig: timestamp in blob differs from the signed one",
              lambda: verify_checkpoint(cos(wkid + (ts + 1).to_bytes(8, "big") + good_sig), pol))
    c.rejects("cosig: little-endian timestamp",
              lambda: verify_checkpoint(cos(wkid + ts.to_bytes(8, "little") + good_sig), pol))
    c.rejects("cosig: signature over the body only (no cosignature/v1 header)",
              lambda: verify_checkpoint(cos(wkid + ts.to_bytes(8, "big") + ed25519_sign(wseed, text)), pol))
    c.rejects("cosig: no timestamp field",
              lambda: verify_checkpoint(cos(wkid + ed25519_sign(wseed, cosignature_message(ts, text))), pol))
    c.rejects("cosig: signature over a different checkpoint", lambda: verify_checkpoint(
        cos(wkid + ts.to_bytes(8, "big") + ed25519_sign(wseed, cosignature_message(ts, other_text))), pol))
    big_ts = 1 << 63
    c.rejects("cosig: timestamp 2^63 rejected", lambda: verify_checkpoint(
        cos(wkid + big_ts.to_bytes(8, "big") + ed25519_sign(wseed, cosignature_message(big_ts, text))), pol))
    c.accepts("cosig: timestamp 0 accepted", lambda: verify_checkpoint(
        cos(wkid + bytes(8) + ed25519_sign(wseed, cosignature_message(0, text))), pol))
    # a witness signing with the node-signature key id (type 0x01) is an unknown key
    wkid01 = key_id(wname, SIG_TYPE_ED25519, wpub)
    c.rejects("cosig: key id computed with type 0x01 is not the witness key", lambda: verify_checkpoint(
        cos(wkid01 + ts.to_bytes(8, "big") + good_sig), pol))
    # node key ids use type 0x01: a node signature with a 0x04-style key id is unknown
    nname, nseed = fx.nodes[0]
    nkid04 = key_id(nname, SIG_TYPE_COSIG_V1, ed25519_public_key(nseed))
    wrong_type = text + b"\n" + signature_line(nname, nkid04 + ed25519_sign(nseed, text)) \
        + note_signature_line(*fx.nodes[1], text) + cosignature_line(wname, wseed, text, ts)
    c.rejects("note sig: key id computed with type 0x04 is not the node key", lambda: verify_checkpoint(wrong_type, pol))


def _test_policy(c: _Checks, fx: _Fixture) -> None:
    c.accepts("policy: fixture parses", fx.policy)
    c.rejects("policy: unknown field", lambda: fx.policy(witnessQuorum=2))
    c.rejects("policy: duplicate JSON field", lambda: parse_trust_policy(
        b'{"origin": "o", "quorum": 1, "quorum": 0, "keys": ["' + fx.node_vkeys[0].encode() + b'"]}'))
    c.rejects("policy: quorum 0", lambda: fx.policy(quorum=0))
    c.rejects("policy: quorum above key count", lambda: fx.policy(quorum=4))
    c.rejects("policy: quorum is a boolean", lambda: fx.policy(quorum=True))
    c.rejects("policy: witness quorum above witness count", lambda: fx.policy(witness_quorum=3))
    c.rejects("policy: same key twice", lambda: fx.policy(keys=[fx.node_vkeys[0], fx.node_vkeys[0]]))
    c.rejects("policy: witness key (0x04) used as node key", lambda: fx.policy(keys=fx.witness_vkeys, quorum=1))
    c.rejects("policy: node key (0x01) used as witness key", lambda: fx.policy(witnesses=fx.node_vkeys))
    vk = fx.node_vkeys[0]
    name, hid, key64 = vk.split("+", 2)
    c.rejects("policy: wrong key id in verifier key", lambda: fx.policy(keys=[f"{name}+00000000+{key64}"], quorum=1))
    c.rejects("policy: uppercase key id", lambda: fx.policy(keys=[f"{name}+{hid.upper()}+{key64}"], quorum=1)
              if hid != hid.upper() else _raise())
    c.rejects("policy: verifier key without type byte", lambda: fx.policy(
        keys=[f"{name}+{hid}+{b64(base64.b64decode(key64)[1:])}"], quorum=1))
    c.rejects("policy: missing origin", lambda: parse_trust_policy(b'{"quorum": 1, "keys": []}'))


def _test_receipts(c: _Checks, fx: _Fixture) -> None:
    pol = fx.policy()
    note8 = fx.note(8)
    for i in range(8):
        r = c.accepts(f"receipt: index {i} of 8 verifies", lambda: verify_receipt(fx.receipt(i, 8, note8), pol))
        c.ok(f"receipt: index {i} returns the leaf", r is not None and r.leaf == fx.leaves[i] and r.index == i)
    c.accepts("receipt: index 0 of 1 (no path lines)", lambda: verify_receipt(fx.receipt(0, 1), pol))
    note5 = fx.note(5)
    good = fx.receipt(3, 5, note5)
    head, _, note = good.partition(b"\n\n")
    hl = head.split(b"\n")
    c.ok("receipt: layout", hl[0] == b"c2sp.org/tlog-proof@v1" and hl[1].startswith(b"extra ")
         and hl[2] == b"index 3" and note == note5)

    def rec(lines: list[bytes], n: bytes = note) -> bytes:
        return b"\n".join(lines) + b"\n\n" + n

    c.accepts("receipt: rebuilt from parts", lambda: verify_receipt(rec(hl), pol))
    for j in range(3, len(hl)):
        h = base64.b64decode(hl[j])
        for bit in (0, 255):
            bad = hl[:j] + [b64(_flip(h, bit)).encode()] + hl[j + 1:]
            c.rejects(f"receipt: bit {bit} flipped in path element {j - 3}", lambda: verify_receipt(rec(bad), pol))
    c.rejects("receipt: path truncated", lambda: verify_receipt(rec(hl[:-1]), pol))
    c.rejects("receipt: path with extra element", lambda: verify_receipt(rec(hl + [hl[-1]]), pol))
    c.rejects("receipt: path reversed", lambda: verify_receipt(rec(hl[:3] + hl[3:][::-1]), pol))
    leaf = fx.leaves[3]
    c.rejects("receipt: wrong leaf in extra", lambda: verify_receipt(
        rec([hl[0], b"extra " + b64(leaf + b"\x00").encode()] + hl[2:]), pol))
    c.rejects("receipt: extra holds the leaf hash, not the leaf", lambda: verify_receipt(
        rec([hl[0], b"extra " + b64(leaf_hash(leaf)).encode()] + hl[2:]), pol))
    c.rejects("receipt: wrong index", lambda: verify_receipt(rec(hl[:2] + [b"index 2"] + hl[3:]), pol))
    c.rejects("receipt: index = size", lambda: verify_receipt(rec(hl[:2] + [b"index 5"] + hl[3:]), pol))
    c.rejects("receipt: index with leading zero", lambda: verify_receipt(rec(hl[:2] + [b"index 03"] + hl[3:]), pol))
    c.rejects("receipt: index with two spaces", lambda: verify_receipt(rec(hl[:2] + [b"index  3"] + hl[3:]), pol))
    c.rejects("receipt: negative index", lambda: verify_receipt(rec(hl[:2] + [b"index -3"] + hl[3:]), pol))
    c.rejects("receipt: missing extra line", lambda: verify_receipt(rec([hl[0]] + hl[2:]), pol))
    c.rejects("receipt: missing index line", lambda: verify_receipt(rec(hl[:2] + hl[3:]), pol))
    c.rejects("receipt: index before extra", lambda: verify_receipt(rec([hl[0], hl[2], hl[1]] + hl[3:]), pol))
    c.rejects("receipt: wrong header", lambda: verify_receipt(rec([b"c2sp.org/tlog-proof@v2"] + hl[1:]), pol))
    c.rejects("receipt: unpadded extra", lambda: verify_receipt(
        rec([hl[0], hl[1].rstrip(b"=")] + hl[2:]), pol) if hl[1].endswith(b"=") else _raise())
    c.rejects("receipt: hash line of 31 bytes", lambda: verify_receipt(
        rec(hl[:3] + [b64(base64.b64decode(hl[3])[:31]).encode()] + hl[4:]), pol))
    c.rejects("receipt: hash line in hex", lambda: verify_receipt(
        rec(hl[:3] + [base64.b64decode(hl[3]).hex().encode()] + hl[4:]), pol))
    c.rejects("receipt: bad base64 in hash line", lambda: verify_receipt(rec(hl[:3] + [b"!!!!"] + hl[4:]), pol))
    c.rejects("receipt: trailing garbage after the note", lambda: verify_receipt(good + b"garbage", pol))
    c.rejects("receipt: trailing garbage line after the note", lambda: verify_receipt(good + b"garbage\n", pol))
    c.rejects("receipt: trailing newline after the note", lambda: verify_receipt(good + b"\n", pol))
    c.rejects("receipt: two blank lines before the note", lambda: verify_receipt(rec(hl, b"\n" + note), pol))
    c.rejects("receipt: CRLF", lambda: verify_receipt(good.replace(b"\n", b"\r\n"), pol))
    c.rejects("receipt: no checkpoint", lambda: verify_receipt(b"\n".join(hl) + b"\n", pol))
    c.rejects("receipt: proof for another size (path of 8 with checkpoint of 5)",
              lambda: verify_receipt(fx.receipt(3, 8, note5), pol))
    c.rejects("receipt: checkpoint under quorum", lambda: verify_receipt(fx.receipt(3, 5, fx.note(5, (0,))), pol))
    c.rejects("receipt: checkpoint with a bad configured signature", lambda: verify_receipt(
        fx.receipt(3, 5, note5.replace(b"\n5\n", b"\n6\n")), pol))


def _test_cli(c: _Checks, fx: _Fixture) -> None:
    def run(argv: list[str]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return code, out.getvalue(), err.getvalue()

    with tempfile.TemporaryDirectory() as d:
        def w(name: str, data: bytes) -> str:
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
            return path

        trust = w("trust.json", fx.policy_json())
        n3, n8 = w("3.note", fx.note(3)), w("8.note", fx.note(8))
        root8 = b64(merkle_root(fx.lh))
        code, out, err = run(["checkpoint", n8, "--trust", trust])
        c.ok("cli: checkpoint OK line", code == 0 and out == f"OK checkpoint {fx.ORIGIN} 8 {root8} sigs=3\n",
             repr((code, out, err)))
        code, out, err = run(["checkpoint", w("bad.note", fx.note(8, (0,))), "--trust", trust])
        c.ok("cli: checkpoint failure", code == 1 and out == "" and err.startswith("FAIL: "), repr((code, out, err)))
        rp = w("r.tlog-proof", fx.receipt(6, 8))
        code, out, err = run(["receipt", rp, "--trust", trust])
        c.ok("cli: receipt OK line", code == 0 and out ==
             f"OK receipt index=6 size=8 leaf_sha256={hashlib.sha256(fx.leaves[6]).hexdigest()}\n",
             repr((code, out, err)))
        code, out, err = run(["receipt", w("bad.tlog-proof", fx.receipt(6, 8) + b"x"), "--trust", trust])
        c.ok("cli: receipt failure", code == 1 and err.startswith("FAIL: "), repr((code, out, err)))
        proof = "".join(b64(h) + "\n" for h in consistency_proof(3, fx.lh)).encode()
        pf = w("3-8.proof", proof)
        code, out, err = run(["consistency", "--old", n3, "--new", n8, "--proof", pf, "--trust", trust])
        c.ok("cli: consistency OK line", code == 0 and out == "OK consistency 3 -> 8\n", repr((code, out, err)))
        pf2 = w("3-8-no-final-newline.proof", proof[:-1])
        code, out, err = run(["consistency", "--old", n3, "--new", n8, "--proof", pf2, "--trust", trust])
        c.ok("cli: consistency proof without final newline", code == 0, repr((code, out, err)))
        code, out, err = run(["consistency", "--old", n8, "--new", n3, "--proof", pf, "--trust", trust])
        c.ok("cli: consistency with swapped checkpoints fails", code == 1 and err.startswith("FAIL: "))
        code, out, err = run(["consistency", "--old", n3, "--new", n8, "--proof", w("blank.proof", proof + b"\n"),
                              "--trust", trust])
        c.ok("cli: consistency proof with a blank line fails", code == 1 and err.startswith("FAIL: "))
        empty = w("empty.proof", b"")
        code, out, err = run(["consistency", "--old", n8, "--new", n8, "--proof", empty, "--trust", trust])
        c.ok("cli: consistency 8 -> 8 with empty proof file", code == 0 and out == "OK consistency 8 -> 8\n",
             repr((code, out, err)))
        code, out, err = run(["consistency", "--old", n3, "--new", n8, "--proof", empty, "--trust", trust])
        c.ok("cli: consistency 3 -> 8 with empty proof fails", code == 1)
        code, out, err = run(["checkpoint", os.path.join(d, "missing.note"), "--trust", trust])
        c.ok("cli: missing file fails cleanly", code == 1 and err.startswith("FAIL: "), repr((code, out, err)))
        code, out, err = run(["checkpoint", n8, "--trust", w("bad.json", b"{")])
        c.ok("cli: bad trust file fails cleanly", code == 1 and err.startswith("FAIL: "), repr((code, out, err)))


def selftest(verbose: bool = False) -> int:
    c = _Checks(verbose)
    tdir = testdata_dir()
    try:
        with open(os.path.join(tdir, "merkle-vectors.json"), "rb") as f:
            mv = json.load(f)
        with open(os.path.join(tdir, "signed-note-vectors.json"), "rb") as f:
            nv = json.load(f)
    except OSError as e:
        print(f"FAIL: cannot read test vectors in {tdir}: {e}", file=sys.stderr)
        return 1
    sections = [
        ("ed25519", lambda: _test_ed25519(c)),
        ("merkle", lambda: _test_merkle(c, mv)),
        ("signed-note vector", lambda: _test_signed_note_vector(c, nv, mv)),
        ("external vectors", lambda: _test_external_vectors(c)),
    ]
    fx = _Fixture(mv, nv)
    sections += [
        ("checkpoints", lambda: _test_checkpoints(c, fx)),
        ("policy", lambda: _test_policy(c, fx)),
        ("receipts", lambda: _test_receipts(c, fx)),
        ("cli", lambda: _test_cli(c, fx)),
    ]
    for name, fn in sections:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - a crash in a section is a failure
            c.ok(f"{name}: section ran to completion", False, f"{type(e).__name__}: {e}")
    print(f"testdata: {tdir}")
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"FAIL: usage: {message}", file=sys.stderr)
        raise SystemExit(2)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise VerifyError(f"cannot read {path}: {e.strerror}") from None


def main(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="gridledger_verify.py",
                description="Independent verifier for gridledger checkpoints, receipts and consistency proofs.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("checkpoint", help="verify a signed checkpoint note")
    s.add_argument("note")
    s.add_argument("--trust", required=True)
    s = sub.add_parser("receipt", help="verify a C2SP tlog-proof receipt")
    s.add_argument("receipt")
    s.add_argument("--trust", required=True)
    s = sub.add_parser("consistency", help="verify two checkpoints and a consistency proof")
    s.add_argument("--old", required=True)
    s.add_argument("--new", required=True)
    s.add_argument("--proof", required=True, help="one base64 hash per line")
    s.add_argument("--trust", required=True)
    s = sub.add_parser("selftest", help="run the known-answer vectors and negative cases")
    s.add_argument("--verbose", action="store_true")
    a = p.parse_args(argv)

    if a.cmd == "selftest":
        return selftest(a.verbose)
    try:
        policy = parse_trust_policy(_read(a.trust))
        if a.cmd == "checkpoint":
            cp = verify_checkpoint(_read(a.note), policy)
            b = cp.body
            print(f"OK checkpoint {b.origin} {b.size} {b64(b.root)} sigs={len(cp.signers)}")
        elif a.cmd == "receipt":
            r = verify_receipt(_read(a.receipt), policy)
            print(f"OK receipt index={r.index} size={r.checkpoint.body.size} "
                  f"leaf_sha256={hashlib.sha256(r.leaf).hexdigest()}")
        else:
            old, new = verify_checkpoint_consistency(_read(a.old), _read(a.new), _read(a.proof), policy)
            print(f"OK consistency {old.body.size} -> {new.body.size}")
    except VerifyError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
