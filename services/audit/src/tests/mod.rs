//! Tests of the crate through its public API, built into its unit-test
//! binary (one test binary per crate; end-to-end suites are in `tests/`).

mod mutations;

/// A PKCS#8 PEM Ed25519 key made from `seed` repeated: the same key for the
/// same seed, for the unit tests of checkpoints, witnesses and receipts.
pub(crate) fn pem(seed: u8) -> String {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
        .to_pkcs8_pem(Default::default())
        .map(|p| p.to_string())
        .unwrap_or_default()
}
