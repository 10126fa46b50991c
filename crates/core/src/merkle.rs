//! The RFC 6962 Merkle tree behind the audit log: SHA-256 with leaf prefix `0x00` and node
//! prefix `0x01`, a compact range for appends, inclusion and consistency proofs and their
//! verification (RFC 9162 section 2.1), so any Certificate Transparency verifier agrees with us.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (for `n >= 2`).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The root over a slice of leaf hashes (RFC 6962 section 2.1, MTH).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The tree's right edge: one hash per perfect subtree, largest first. Appending a leaf and
/// computing the root are both O(log n), so the sequencer never re-reads the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Hash>,
}

/// A frontier whose peak count does not match its size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a compact range of size {size} needs {expected} hashes, not {found}")]
pub struct CompactRangeError {
    size: u64,
    expected: usize,
    found: usize,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from its size and peaks, as stored.
    ///
    /// # Errors
    /// When the number of peaks is not the number of set bits of `size`.
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Result<Self, CompactRangeError> {
        let expected = size.count_ones() as usize;
        if peaks.len() != expected {
            return Err(CompactRangeError {
                size,
                expected,
                found: peaks.len(),
            });
        }
        Ok(Self { size, peaks })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The peaks, largest subtree first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends one leaf hash.
    pub fn append(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            let left = self.peaks.pop().expect("a set bit has a peak");
            h = node_hash(&left, &h);
            s >>= 1;
        }
        self.peaks.push(h);
        self.size += 1;
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(first) = it.next() else {
            return empty_root();
        };
        it.fold(*first, |acc, left| node_hash(left, &acc))
    }
}

/// A proof request that does not fit the tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one, or from the empty tree.
    #[error("no consistency proof from size {old} to size {new}")]
    BadSizes {
        /// The earlier size.
        old: u64,
        /// The later size.
        new: u64,
    },
    /// The proof does not lead to the expected root.
    #[error("the proof does not match the root")]
    Mismatch,
}

/// The audit path of leaf `index` in the tree over `leaves` (RFC 6962 section 2.1.1).
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] when `index >= leaves.len()`.
pub fn inclusion_proof(index: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(index as usize, leaves, &mut proof);
    Ok(proof)
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n as u64) as usize;
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The consistency proof between the tree of the first `old` leaves and the tree over all of
/// `leaves` (RFC 6962 section 2.1.2).
///
/// # Errors
/// [`ProofError::BadSizes`] unless `0 < old <= leaves.len()`.
pub fn consistency_proof(old: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let new = leaves.len() as u64;
    if old == 0 || old > new {
        return Err(ProofError::BadSizes { old, new });
    }
    let mut proof = Vec::new();
    subproof(old as usize, leaves, true, &mut proof);
    Ok(proof)
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n as u64) as usize;
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves with `root`
/// (RFC 9162 section 2.1.3.2).
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] or [`ProofError::Mismatch`].
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    expected_root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(ProofError::Mismatch);
        }
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
    if s_n == 0 && r == *expected_root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Checks that the tree of `new_size` with `new_root` extends the tree of `old_size` with
/// `old_root` (RFC 9162 section 2.1.4.2).
///
/// # Errors
/// [`ProofError::BadSizes`] or [`ProofError::Mismatch`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size == 0 || old_size > new_size {
        return Err(ProofError::BadSizes {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    let mut proof = proof.to_vec();
    if old_size.is_power_of_two() {
        proof.insert(0, *old_root);
    }
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::Mismatch);
    };
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(ProofError::Mismatch);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n == 0 && fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published RFC 6962 vectors (transparency-dev/merkle `testonly`), copied into the
    /// project's own test data.
    const VECTORS: &str = include_str!("../testdata/rfc6962.json");

    struct Vectors {
        leaves: Vec<Hash>,
        roots: Vec<Hash>,
        inclusion: Vec<(u64, u64, Vec<Hash>)>,
        consistency: Vec<(u64, u64, Vec<Hash>)>,
    }

    fn h(s: &str) -> Hash {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).unwrap();
        out
    }

    fn vectors() -> Vectors {
        let v: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
        let hashes = |x: &serde_json::Value| -> Vec<Hash> {
            x.as_array()
                .unwrap()
                .iter()
                .map(|s| h(s.as_str().unwrap()))
                .collect()
        };
        let proofs = |key: &str, a: &str, b: &str| {
            v[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[a].as_u64().unwrap(),
                        p[b].as_u64().unwrap(),
                        hashes(&p["proof"]),
                    )
                })
                .collect()
        };
        Vectors {
            leaves: v["leaf_inputs_hex"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| leaf_hash(&hex::decode(s.as_str().unwrap()).unwrap()))
                .collect(),
            roots: hashes(&v["roots_by_size_hex"]),
            inclusion: proofs("inclusion_proofs", "leaf_index", "tree_size"),
            consistency: proofs("consistency_proofs", "size1", "size2"),
        }
    }

    #[test]
    fn roots_match_published_vectors() {
        let v = vectors();
        for (n, want) in v.roots.iter().enumerate() {
            assert_eq!(&root(&v.leaves[..n]), want, "recursive root of size {n}");
            let mut cr = CompactRange::new();
            v.leaves[..n].iter().for_each(|l| cr.append(*l));
            assert_eq!(&cr.root(), want, "compact range root of size {n}");
        }
    }

    #[test]
    fn inclusion_proofs_match_published_vectors() {
        let v = vectors();
        for (index, size, want) in &v.inclusion {
            let got = inclusion_proof(*index, &v.leaves[..*size as usize]).unwrap();
            assert_eq!(&got, want, "inclusion proof of {index} in {size}");
            let root = &v.roots[*size as usize];
            verify_inclusion(*index, *size, &v.leaves[*index as usize], want, root).unwrap();
        }
    }

    #[test]
    fn consistency_proofs_match_published_vectors() {
        let v = vectors();
        for (old, new, want) in &v.consistency {
            let got = consistency_proof(*old, &v.leaves[..*new as usize]).unwrap();
            assert_eq!(&got, want, "consistency proof {old} -> {new}");
            let (r1, r2) = (&v.roots[*old as usize], &v.roots[*new as usize]);
            verify_consistency(*old, *new, r1, r2, want).unwrap();
        }
    }

    #[test]
    fn every_proof_verifies_and_every_tampering_fails() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for size in 1..=leaves.len() {
            let tree = &leaves[..size];
            let r = root(tree);
            for i in 0..size as u64 {
                let p = inclusion_proof(i, tree).unwrap();
                verify_inclusion(i, size as u64, &tree[i as usize], &p, &r).unwrap();
                let wrong_leaf = leaf_hash(b"not in the tree");
                assert!(verify_inclusion(i, size as u64, &wrong_leaf, &p, &r).is_err());
                if size > 1 {
                    let other = (i + 1) % size as u64;
                    assert!(
                        verify_inclusion(other, size as u64, &tree[i as usize], &p, &r).is_err()
                    );
                }
            }
            for old in 1..=size as u64 {
                let p = consistency_proof(old, tree).unwrap();
                let r_old = root(&leaves[..old as usize]);
                verify_consistency(old, size as u64, &r_old, &r, &p).unwrap();
                if old < size as u64 {
                    let forged = leaf_hash(b"forged");
                    assert!(verify_consistency(old, size as u64, &forged, &r, &p).is_err());
                }
            }
        }
    }

    #[test]
    fn compact_range_round_trips_through_parts() {
        let mut cr = CompactRange::new();
        for i in 0u32..11 {
            cr.append(leaf_hash(&i.to_be_bytes()));
        }
        let back = CompactRange::from_parts(cr.size(), cr.peaks().to_vec()).unwrap();
        assert_eq!(back.root(), cr.root());
        assert!(CompactRange::from_parts(11, vec![]).is_err());
    }
}
