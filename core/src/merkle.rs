//! RFC 9162 §2.1 Merkle tree hashing, proof construction and proof verification.
//!
//! Construction works over any [`HashSource`] that can return the hash of a *perfect*
//! subtree (2^level leaves starting at a multiple of 2^level). Every node that RFC 9162's
//! recursive definitions need is either such a perfect subtree or an imperfect node on
//! the right edge of the tree, which is folded from at most log2(n) perfect subtrees.
//! So building a proof costs O(log n) reads of the source.
//!
//! Verification follows the iterative algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 and
//! returns typed errors carrying the expected and computed values.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Domain separator for leaf hashes (RFC 9162 §2.1.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain separator for interior node hashes (RFC 9162 §2.1.1).
pub const NODE_PREFIX: u8 = 0x01;

/// Hash of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// MTH({d}) = SHA-256(0x00 || d).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(leaf);
    h.finalize().into()
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Why a proof failed to verify, or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// Requested index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// Consistency asked from a larger to a smaller tree.
    #[error("old size {old} is larger than new size {new}")]
    SizeOrder {
        /// Old tree size.
        old: u64,
        /// New tree size.
        new: u64,
    },
    /// The proof has a different number of hashes than the sizes require.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength {
        /// Length the sizes require.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// The recomputed root does not match the claimed one.
    #[error(
        "root mismatch: expected {}, computed {}",
        hex::encode(expected),
        hex::encode(computed)
    )]
    RootMismatch {
        /// The root the proof was checked against.
        expected: Hash,
        /// The root the proof leads to.
        computed: Hash,
    },
    /// A consistency proof between equal sizes needs equal roots.
    #[error(
        "equal sizes but different roots: {} vs {}",
        hex::encode(old),
        hex::encode(new)
    )]
    EqualSizeDifferentRoots {
        /// Old root.
        old: Hash,
        /// New root.
        new: Hash,
    },
    /// Consistency from the empty tree is meaningless in RFC 9162 (nothing to prove).
    #[error("consistency from an empty tree has no proof")]
    EmptyOld,
    /// The hash source failed (storage error while building a proof).
    #[error("hash source: {0}")]
    Source(String),
}

/// Where proof construction reads hashes from.
///
/// `perfect(level, index)` is the root of the perfect subtree over leaves
/// `[index << level, (index + 1) << level)`; level 0 is the leaf hash.
pub trait HashSource {
    /// Returns the hash of a perfect subtree.
    ///
    /// # Errors
    /// Any failure of the underlying store, as a message; it becomes
    /// [`ProofError::Source`]. A source must never be asked for a subtree beyond the
    /// tree size the caller is building for, so "missing" is a store fault.
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, String>;
}

impl HashSource for [Hash] {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, String> {
        let start = (index << level) as usize;
        let end = ((index + 1) << level) as usize;
        if end > self.len() {
            return Err(format!(
                "subtree {level}/{index} beyond {} leaves",
                self.len()
            ));
        }
        Ok(fold_perfect(&self[start..end]))
    }
}

impl HashSource for Vec<Hash> {
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, String> {
        self.as_slice().perfect(level, index)
    }
}

fn fold_perfect(leaves: &[Hash]) -> Hash {
    if leaves.len() == 1 {
        return leaves[0];
    }
    let mid = leaves.len() / 2;
    node_hash(&fold_perfect(&leaves[..mid]), &fold_perfect(&leaves[mid..]))
}

/// The largest power of two strictly smaller than `n` (n >= 2): RFC 9162's split point k.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[a:b]) for a range that occurs in RFC 9162's recursion (a aligned to the largest
/// power of two not above b - a, or b the tree's right edge).
pub fn range_hash<S: HashSource + ?Sized>(src: &S, a: u64, b: u64) -> Result<Hash, ProofError> {
    debug_assert!(b > a);
    let n = b - a;
    if n.is_power_of_two() && a.is_multiple_of(n) {
        return src
            .perfect(n.trailing_zeros(), a / n)
            .map_err(ProofError::Source);
    }
    let k = split(n);
    let left = range_hash(src, a, a + k)?;
    let right = range_hash(src, a + k, b)?;
    Ok(node_hash(&left, &right))
}

/// The root of the tree of the first `size` leaves.
pub fn root<S: HashSource + ?Sized>(src: &S, size: u64) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size)
}

/// PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf sibling first.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] when `index >= size`; [`ProofError::Source`] on reads.
pub fn inclusion_proof<S: HashSource + ?Sized>(
    src: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut path = Vec::with_capacity(64);
    // Walk down from the root; siblings are collected top-down and reversed at the end.
    let (mut a, mut b) = (0u64, size);
    while b - a > 1 {
        let k = split(b - a);
        if index < a + k {
            path.push(range_hash(src, a + k, b)?);
            b = a + k;
        } else {
            path.push(range_hash(src, a, a + k)?);
            a += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// PROOF(old, D[0:new]) of RFC 9162 §2.1.4.1.
///
/// # Errors
/// [`ProofError::SizeOrder`] when `old > new`, [`ProofError::EmptyOld`] when `old == 0`,
/// [`ProofError::Source`] on reads.
pub fn consistency_proof<S: HashSource + ?Sized>(
    src: &S,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, ProofError> {
    if old > new {
        return Err(ProofError::SizeOrder { old, new });
    }
    if old == 0 {
        return Err(ProofError::EmptyOld);
    }
    let mut out = Vec::with_capacity(64);
    if old == new {
        return Ok(out);
    }
    // SUBPROOF(m, D[a:b], true), unrolled. `complete` says whether D[a:a+m] is the old tree
    // itself (then its hash is not needed, the verifier has it).
    let (mut a, mut b, mut m, mut complete) = (0u64, new, old, true);
    loop {
        let n = b - a;
        if m == n {
            if !complete {
                out.push(range_hash(src, a, b)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            out.push(range_hash(src, a + k, b)?);
            b = a + k;
        } else {
            out.push(range_hash(src, a, a + k)?);
            a += k;
            m -= k;
            complete = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`ProofError::IndexOutOfRange`], [`ProofError::WrongLength`] or
/// [`ProofError::RootMismatch`].
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion(leaf_hash, index, size, path)?;
    if &computed != root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}

/// The root an inclusion proof leads to, after checking its length.
pub fn root_from_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_len(index, size);
    if path.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: path.len(),
        });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in path {
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // The length check above makes s_n reach 0 exactly; keep the RFC's final test anyway.
    debug_assert_eq!(s_n, 0);
    Ok(r)
}

/// Number of hashes in PATH(index, D[0:size]), by running RFC 9162 §2.1.3.2's index walk
/// without hashing (so the length rule is the verification algorithm itself).
pub fn inclusion_len(index: u64, size: u64) -> usize {
    walk_len(index, size - 1)
}

// Counts the steps of the RFC's walk over (f_n, s_n) until s_n reaches 0.
fn walk_len(mut f_n: u64, mut s_n: u64) -> usize {
    let mut steps = 0;
    while s_n != 0 {
        // The RFC's right-border case: climb while f_n is a left child.
        if f_n & 1 == 0 && f_n == s_n {
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        }
        f_n >>= 1;
        s_n >>= 1;
        steps += 1;
    }
    steps
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2).
///
/// # Errors
/// [`ProofError::SizeOrder`], [`ProofError::EmptyOld`], [`ProofError::WrongLength`],
/// [`ProofError::EqualSizeDifferentRoots`] or [`ProofError::RootMismatch`] (for the old
/// root first, then the new one).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizeOrder { old, new });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                expected: 0,
                got: proof.len(),
            });
        }
        if old_root != new_root {
            return Err(ProofError::EqualSizeDifferentRoots {
                old: *old_root,
                new: *new_root,
            });
        }
        return Ok(());
    }
    if old == 0 {
        return Err(ProofError::EmptyOld);
    }
    let expected = consistency_len(old, new);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            got: proof.len(),
        });
    }
    // Step 1: if old is a power of two, the old root is the first node of the path.
    let mut nodes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        nodes.push(*old_root);
    }
    nodes.extend_from_slice(proof);
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (nodes[0], nodes[0]);
    for c in &nodes[1..] {
        if s_n == 0 {
            // More hashes than the tree has levels: the length check prevents this.
            return Err(ProofError::WrongLength {
                expected,
                got: proof.len(),
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if &fr != old_root {
        return Err(ProofError::RootMismatch {
            expected: *old_root,
            computed: fr,
        });
    }
    if &sr != new_root {
        return Err(ProofError::RootMismatch {
            expected: *new_root,
            computed: sr,
        });
    }
    Ok(())
}

/// Number of hashes in PROOF(old, D[0:new]) for 0 < old < new, by running RFC 9162
/// §2.1.4.2's walk without hashing.
pub fn consistency_len(old: u64, new: u64) -> usize {
    let shift = (old - 1).trailing_ones();
    let steps = walk_len((old - 1) >> shift, (new - 1) >> shift);
    // The walk consumes nodes[1..]; nodes[0] is the old root when old is a power of two,
    // otherwise the first proof hash.
    steps + usize::from(!old.is_power_of_two())
}

/// The right edge of an append-only tree: the perfect subtrees of its binary decomposition.
///
/// This is what a ledger keeps in memory to append leaves and compute roots without
/// reading storage. Appending reports every perfect subtree it completes, so the caller
/// can persist exactly the nodes a [`HashSource`] serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    // Hashes of the perfect subtrees, largest (leftmost) first; one per set bit of size.
    edge: Vec<Hash>,
}

impl Frontier {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier for a tree of `size` leaves from stored perfect subtrees.
    ///
    /// # Errors
    /// [`ProofError::Source`] when the source cannot serve a subtree.
    pub fn load<S: HashSource + ?Sized>(src: &S, size: u64) -> Result<Self, ProofError> {
        let mut edge = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                edge.push(
                    src.perfect(level, start >> level)
                        .map_err(ProofError::Source)?,
                );
                start += 1 << level;
            }
        }
        Ok(Self { size, edge })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash. `completed` receives (level, index, hash) for every perfect
    /// subtree this append completes, the leaf itself (level 0) first.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let index = self.size;
        completed(0, index, &leaf);
        let mut h = leaf;
        let mut level = 0u32;
        while (index >> level) & 1 == 1 {
            let left = self
                .edge
                .pop()
                .expect("a set bit of size has an edge subtree");
            h = node_hash(&left, &h);
            level += 1;
            completed(level, index >> level, &h);
        }
        self.edge.push(h);
        self.size += 1;
    }

    /// The current root.
    pub fn root(&self) -> Hash {
        let mut it = self.edge.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}
