//! The RFC 6962 / RFC 9162 Merkle tree: leaf and node hashing, the root of a
//! list of leaf hashes, an incremental [`CompactRange`] that keeps only the
//! O(log n) hashes needed to append and to compute the root, and inclusion
//! and consistency proofs with their verification (RFC 9162 2.1.3.2 and
//! 2.1.4.2). Pure functions over 32-byte SHA-256 hashes; what a leaf holds,
//! where leaves are stored, and signing roots ([`crate::checkpoint`]) live
//! elsewhere.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a root.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string.
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// Why a proof could not be made or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizeMismatch { old_size: u64, new_size: u64 },
    #[error("proof has {got} hashes, want {want}")]
    WrongProofLength { got: usize, want: usize },
    /// The proof leads to a different (new) root; for two trees of equal
    /// size, `computed` is the old root and `expected` the new one.
    #[error("computed root {} does not match expected root {}", hex::encode(.computed), hex::encode(.expected))]
    RootMismatch { computed: Hash, expected: Hash },
    /// A consistency proof leads to a different old root.
    #[error("computed old root {} does not match expected old root {}", hex::encode(.computed), hex::encode(.expected))]
    OldRootMismatch { computed: Hash, expected: Hash },
}

/// The hash of a leaf holding `data`: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The Merkle Tree Hash (RFC 6962 2.1) of `leaves`, which are leaf hashes.
/// O(n) time, O(log n) extra memory.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut range = CompactRange::new();
    for leaf in leaves {
        range.push(*leaf);
    }
    range.root()
}

/// An append-only tree that keeps one hash per perfect subtree (one per set
/// bit of its size, largest first): enough to append and to compute the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        // Each trailing one bit of the size is a perfect subtree of the same
        // height as `hash`, which now completes it.
        while size & 1 == 1 {
            let Some(left) = self.peaks.pop() else { break };
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// The number of leaves appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of all leaves appended so far; [`EMPTY_ROOT`] when none.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return EMPTY_ROOT;
        };
        peaks.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// The largest power of two smaller than `n` (`n >= 2`): where MTH splits.
fn split(n: usize) -> usize {
    1 << (n - 1).ilog2()
}

/// The audit path (RFC 6962 2.1.1 `PATH(index, D[n])`) of the leaf at `index`
/// among `leaves`, bottom up.
pub fn inclusion_proof(index: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    let m = usize::try_from(index)
        .ok()
        .filter(|&m| m < leaves.len())
        .ok_or(ProofError::IndexOutOfRange { index, size })?;
    // Walk down from the root, taking the sibling of each subtree holding m.
    let (mut lo, mut hi, mut proof) = (0, leaves.len(), Vec::new());
    while hi - lo > 1 {
        let k = lo + split(hi - lo);
        if m < k {
            proof.push(root(&leaves[k..hi]));
            hi = k;
        } else {
            proof.push(root(&leaves[lo..k]));
            lo = k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof (RFC 6962 2.1.2 `PROOF(old_size, D[n])`) that the
/// first `old_size` of `leaves` are a prefix of all of them. Empty when
/// `old_size` is 0 or the whole tree.
pub fn consistency_proof(old_size: u64, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    let new_size = leaves.len() as u64;
    let mut m = usize::try_from(old_size)
        .ok()
        .filter(|&m| m <= leaves.len())
        .ok_or(ProofError::SizeMismatch { old_size, new_size })?;
    if m == 0 {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo..hi], b), unrolled; `b` holds while D[lo..lo + m] is
    // still the whole old tree, whose root the verifier already has.
    let (mut lo, mut hi, mut b, mut proof) = (0, leaves.len(), true, Vec::new());
    while m < hi - lo {
        let k = split(hi - lo);
        if m <= k {
            proof.push(root(&leaves[lo + k..hi]));
            hi = lo + k;
        } else {
            proof.push(root(&leaves[lo..lo + k]));
            lo += k;
            m -= k;
            b = false;
        }
    }
    if !b {
        proof.push(root(&leaves[lo..hi]));
    }
    proof.reverse();
    Ok(proof)
}

/// How many hashes the inclusion proof of `index` in a tree of `size` has:
/// those below the point where its path leaves the right border, and those
/// on the border.
fn inclusion_len(index: u64, size: u64) -> (usize, usize) {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// Checks that `leaf` is at `index` in the tree of `size` with `root`
/// (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = inclusion_len(index, size);
    let (got, want) = (proof.len(), inner + border);
    let wrong_length = ProofError::WrongProofLength { got, want };
    if got != want {
        return Err(wrong_length);
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(wrong_length);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                (f, s) = (f >> 1, s >> 1);
            }
        } else {
            r = node_hash(&r, p);
        }
        (f, s) = (f >> 1, s >> 1);
    }
    if s != 0 {
        return Err(wrong_length);
    }
    let (computed, expected) = (r, *root);
    if computed != expected {
        return Err(ProofError::RootMismatch { computed, expected });
    }
    Ok(())
}

/// Checks that the tree of `old_size` with `old_root` is a prefix of the tree
/// of `new_size` with `new_root` (RFC 9162 2.1.4.2). Equal sizes need equal
/// roots and an empty proof; an empty old tree is consistent with any tree,
/// with an empty proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let got = proof.len();
    if old_size > new_size {
        return Err(ProofError::SizeMismatch { old_size, new_size });
    }
    if old_size == new_size || old_size == 0 {
        if got != 0 {
            return Err(ProofError::WrongProofLength { got, want: 0 });
        }
        let (computed, expected) = (*old_root, *new_root);
        if old_size == new_size && computed != expected {
            return Err(ProofError::RootMismatch { computed, expected });
        }
        return Ok(());
    }
    // The proof is an inclusion proof of the old tree's last perfect subtree,
    // whose root is the seed: given as the first hash unless it is the whole
    // old tree (old_size a power of two).
    let shift = old_size.trailing_zeros() as usize;
    let (inner, border) = inclusion_len(old_size - 1, new_size);
    let start = usize::from(!old_size.is_power_of_two());
    let want = start + inner.saturating_sub(shift) + border;
    let wrong_length = ProofError::WrongProofLength { got, want };
    if got != want {
        return Err(wrong_length);
    }
    let (seed, path) = match proof.split_first() {
        Some((first, rest)) if start == 1 => (first, rest),
        _ => (old_root, proof),
    };
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        (f, s) = (f >> 1, s >> 1);
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in path {
        if s == 0 {
            return Err(wrong_length);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                (f, s) = (f >> 1, s >> 1);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        (f, s) = (f >> 1, s >> 1);
    }
    if s != 0 {
        return Err(wrong_length);
    }
    let (computed, expected) = (fr, *old_root);
    if computed != expected {
        return Err(ProofError::OldRootMismatch { computed, expected });
    }
    let (computed, expected) = (sr, *new_root);
    if computed != expected {
        return Err(ProofError::RootMismatch { computed, expected });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6962 reference vectors, as used by transparency-dev/merkle.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    const H96A2: &str = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7";
    const H5F08: &str = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e";
    const H6B47: &str = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4";
    const HBC1A: &str = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b";
    const HCA85: &str = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0";
    const H0EBC: &str = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a";
    const HB086: &str = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f";
    /// (leaf number L, 1-based; tree size; audit path).
    const INCLUSION: [(u64, u64, &[&str]); 5] = [
        (1, 8, &[H96A2, H5F08, H6B47]),
        (6, 8, &[HBC1A, HCA85, ROOTS[3]]),
        (3, 3, &[ROOTS[1]]),
        (2, 5, &[ROOTS[0], H5F08, HBC1A]),
        (1, 1, &[]),
    ];
    /// (old size, new size, proof).
    const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (1, 8, &[H96A2, H5F08, H6B47]),
        (6, 8, &[H0EBC, HCA85, ROOTS[3]]),
        (2, 5, &[H5F08, HBC1A]),
        (6, 7, &[H0EBC, HB086, ROOTS[3]]),
    ];

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn h(s: &str) -> Hash {
        Hash::try_from(unhex(s).as_slice()).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// MTH straight from RFC 6962 2.1, recursively.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let (left, right) = leaves.split_at(split(n));
                node_hash(&reference_root(left), &reference_root(right))
            }
        }
    }

    /// Corrupted copies of `proof`: hashes added at either end, one removed
    /// from the end, and each of the given bits flipped in each hash.
    fn corruptions(proof: &[Hash], extras: &[Hash], bits: &[usize]) -> Vec<(String, Vec<Hash>)> {
        let mut out = Vec::new();
        for (n, extra) in extras.iter().enumerate() {
            out.push((format!("trailing extra {n}"), [proof, &[*extra]].concat()));
            out.push((format!("preceding extra {n}"), [&[*extra], proof].concat()));
        }
        if let Some((_, rest)) = proof.split_last() {
            out.push(("last removed".into(), rest.to_vec()));
        }
        for i in 0..proof.len() {
            for &bit in bits {
                let mut p = proof.to_vec();
                p[i][bit / 8] ^= 1 << (bit % 8);
                out.push((format!("proof[{i}] bit {bit} flipped"), p));
            }
        }
        out
    }

    /// Every corruption of a valid inclusion proof must fail to verify.
    fn inclusion_probes_fail(
        index: u64,
        size: u64,
        leaf: &Hash,
        proof: &[Hash],
        root: &Hash,
        bits: &[usize],
    ) {
        let wrong = leaf_hash(b"WrongLeaf");
        let fails = |what: &str, i: u64, s: u64, l: &Hash, p: &[Hash], r: &Hash| {
            let result = verify_inclusion(i, s, l, p, r);
            assert!(result.is_err(), "probe {what} passed: {index} of {size}");
        };
        fails("index - 1", index.wrapping_sub(1), size, leaf, proof, root);
        fails("index + 1", index + 1, size, leaf, proof, root);
        fails("index ^ 2", index ^ 2, size, leaf, proof, root);
        fails("size * 2", index, size * 2, leaf, proof, root);
        fails("size / 2", index, size / 2, leaf, proof, root);
        fails("wrong leaf", index, size, &wrong, proof, root);
        fails("wrong root", index, size, leaf, proof, &wrong);
        fails("empty root", index, size, leaf, proof, &EMPTY_ROOT);
        for (what, p) in corruptions(proof, &[[0; 32], *root], bits) {
            fails(&what, index, size, leaf, &p, root);
        }
    }

    /// Every corruption of a valid, non-empty consistency proof must fail.
    fn consistency_probes_fail(
        m: u64,
        n: u64,
        r1: &Hash,
        r2: &Hash,
        proof: &[Hash],
        bits: &[usize],
    ) {
        let wrong = leaf_hash(b"WrongRoot");
        let fails = |what: &str, s1: u64, s2: u64, a: &Hash, b: &Hash, p: &[Hash]| {
            let result = verify_consistency(s1, s2, a, b, p);
            assert!(result.is_err(), "probe {what} passed for {m} -> {n}");
        };
        fails("size1 - 1", m - 1, n, r1, r2, proof);
        fails("size1 + 1", m + 1, n, r1, r2, proof);
        fails("size1 ^ 2", m ^ 2, n, r1, r2, proof);
        fails("size2 * 2", m, n * 2, r1, r2, proof);
        fails("size2 / 2", m, n / 2, r1, r2, proof);
        fails("wrong root1", m, n, &wrong, r2, proof);
        fails("wrong root2", m, n, r1, &wrong, proof);
        fails("swapped roots", m, n, r2, r1, proof);
        fails("empty proof", m, n, r1, r2, &[]);
        for (what, p) in corruptions(proof, &[[0; 32], *r1, *r2, proof[0]], bits) {
            fails(&what, m, n, r1, r2, &p);
        }
    }

    #[test]
    fn hashing_and_empty_tree() {
        assert_eq!(EMPTY_ROOT, <Hash>::from(Sha256::digest(b"")));
        assert_eq!(root(&[]), EMPTY_ROOT);
        assert_eq!(CompactRange::new().root(), EMPTY_ROOT);
        assert_eq!(CompactRange::new().size(), 0);
        assert_eq!(leaf_hash(b""), h(ROOTS[0]));
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let concat = [&[1][..], &a, &b].concat();
        assert_eq!(node_hash(&a, &b), <Hash>::from(Sha256::digest(concat)));
    }

    #[test]
    fn vector_roots() {
        let leaves: Vec<Hash> = LEAVES.iter().map(|s| leaf_hash(&unhex(s))).collect();
        let mut range = CompactRange::new();
        for (k, want) in ROOTS.iter().enumerate() {
            range.push(leaves[k]);
            assert_eq!(root(&leaves[..=k]), h(want), "root() of {} leaves", k + 1);
            assert_eq!(range.root(), h(want), "CompactRange of {} leaves", k + 1);
            assert_eq!(range.size(), k as u64 + 1);
        }
    }

    #[test]
    fn root_matches_rfc_definition() {
        let all = leaves(1100);
        let mut range = CompactRange::new();
        for (n, leaf) in all.iter().enumerate() {
            if n <= 130 || n.is_power_of_two() || n % 97 == 0 {
                assert_eq!(root(&all[..n]), reference_root(&all[..n]), "size {n}");
                assert_eq!(range.root(), reference_root(&all[..n]), "pushed {n}");
            }
            range.push(*leaf);
        }
    }

    #[test]
    fn vector_inclusion_proofs() {
        let leaves: Vec<Hash> = LEAVES.iter().map(|s| leaf_hash(&unhex(s))).collect();
        let all_bits: Vec<usize> = (0..256).collect();
        for (number, size, want) in INCLUSION {
            let (index, root) = (number - 1, h(ROOTS[size as usize - 1]));
            let leaf = &leaves[index as usize];
            let proof = inclusion_proof(index, &leaves[..size as usize]);
            let proof = proof.unwrap_or_else(|e| panic!("{e}"));
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(proof, want, "proof for leaf {number} of {size}");
            assert_eq!(verify_inclusion(index, size, leaf, &proof, &root), Ok(()));
            inclusion_probes_fail(index, size, leaf, &proof, &root, &all_bits);
        }
    }

    #[test]
    fn vector_consistency_proofs() {
        let leaves: Vec<Hash> = LEAVES.iter().map(|s| leaf_hash(&unhex(s))).collect();
        let all_bits: Vec<usize> = (0..256).collect();
        for (m, n, want) in CONSISTENCY {
            let proof = consistency_proof(m, &leaves[..n as usize]);
            let proof = proof.unwrap_or_else(|e| panic!("{e}"));
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            assert_eq!(proof, want, "proof for {m} -> {n}");
            let (r1, r2) = (h(ROOTS[m as usize - 1]), h(ROOTS[n as usize - 1]));
            assert_eq!(verify_consistency(m, n, &r1, &r2, &proof), Ok(()));
            if !proof.is_empty() {
                consistency_probes_fail(m, n, &r1, &r2, &proof, &all_bits);
            }
        }
    }

    #[test]
    fn every_proof_up_to_64_leaves_verifies() {
        let all = leaves(64);
        let roots: Vec<Hash> = (0..=64).map(|n| root(&all[..n])).collect();
        for n in 1..=64 {
            let (tree, r2) = (&all[..n as usize], &roots[n as usize]);
            for index in 0..n {
                let proof = inclusion_proof(index, tree).unwrap_or_else(|e| panic!("{e}"));
                let leaf = &tree[index as usize];
                let result = verify_inclusion(index, n, leaf, &proof, r2);
                assert_eq!(result, Ok(()), "leaf {index} of {n}");
                inclusion_probes_fail(index, n, leaf, &proof, r2, &[3, 255]);
            }
            for m in 1..=n {
                let proof = consistency_proof(m, tree).unwrap_or_else(|e| panic!("{e}"));
                let r1 = &roots[m as usize];
                let result = verify_consistency(m, n, r1, r2, &proof);
                assert_eq!(result, Ok(()), "{m} -> {n}");
                if m < n {
                    consistency_probes_fail(m, n, r1, r2, &proof, &[3, 255]);
                }
            }
        }
    }

    #[test]
    fn edge_cases() {
        let all = leaves(5);
        let (e, r4, r5) = (&EMPTY_ROOT, root(&all[..4]), root(&all));
        let range = |index, size| ProofError::IndexOutOfRange { index, size };
        let length = |got, want| ProofError::WrongProofLength { got, want };
        let order = |old_size, new_size| ProofError::SizeMismatch { old_size, new_size };
        assert_eq!(inclusion_proof(0, &[]), Err(range(0, 0)));
        assert_eq!(inclusion_proof(5, &all), Err(range(5, 5)));
        assert_eq!(inclusion_proof(u64::MAX, &all), Err(range(u64::MAX, 5)));
        assert_eq!(verify_inclusion(0, 0, &all[0], &[], e), Err(range(0, 0)));
        assert_eq!(verify_inclusion(5, 5, &all[0], &[], &r5), Err(range(5, 5)));
        assert_eq!(verify_inclusion(0, 5, &all[0], &[], &r5), Err(length(0, 3)));

        assert_eq!(consistency_proof(0, &all), Ok(Vec::new()));
        assert_eq!(consistency_proof(0, &[]), Ok(Vec::new()));
        assert_eq!(consistency_proof(5, &all), Ok(Vec::new()));
        assert_eq!(consistency_proof(6, &all), Err(order(6, 5)));
        assert_eq!(verify_consistency(6, 5, &r5, &r5, &[]), Err(order(6, 5)));
        assert_eq!(verify_consistency(0, 5, e, &r5, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 0, e, e, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 5, e, &r5, &[r5]), Err(length(1, 0)));
        assert_eq!(verify_consistency(5, 5, &r5, &r5, &[]), Ok(()));
        assert_eq!(verify_consistency(5, 5, &r5, &r5, &[r5]), Err(length(1, 0)));
        let (computed, expected) = (r4, r5);
        let mismatch = Err(ProofError::RootMismatch { computed, expected });
        assert_eq!(verify_consistency(5, 5, &r4, &r5, &[]), mismatch);
        assert_eq!(verify_consistency(4, 5, &r4, &r5, &[]), Err(length(0, 1)));
    }

    #[test]
    fn a_million_leaves() {
        // Distinct stand-ins for leaf hashes: the tree never looks inside.
        let all: Vec<Hash> = (0..1_000_000u64)
            .map(|i| {
                let mut hash = [0; 32];
                hash[..8].copy_from_slice(&i.to_be_bytes());
                hash
            })
            .collect();
        let big = root(&all);
        let proof = inclusion_proof(999_999, &all).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            verify_inclusion(999_999, 1_000_000, &all[999_999], &proof, &big),
            Ok(())
        );
    }
}
