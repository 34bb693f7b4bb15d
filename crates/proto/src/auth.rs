//! Owning a name: the proof a `hello` gives that its sender holds the key bound to the name.
//!
//! A natter client keeps an Ed25519 key pair in its data directory. Its `hello` carries the public key
//! (`key`); the server answers with a `challenge` (a fresh random nonce), and the client signs
//! [`challenge_message`] — the nonce and the name — and sends the signature in `prove`. The first proven
//! `hello` for a name nobody owns binds the key to the name (the name is then *owned*); every later `hello`
//! for it must prove a bound key. The private key never leaves the client, a signature is good for one
//! nonce only, so a recorded `prove` cannot be replayed, and nothing secret crosses the wire.
//! PROTOCOL.md §4 *Owned names* has the same in prose.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer};
pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// Bytes of a challenge nonce.
pub const NONCE_BYTES: usize = 32;

/// What the client signs: a fixed label, the nonce as sent (base64url), and the name as sent in `hello`,
/// separated by newlines.
pub fn challenge_message(nonce: &str, name: &str) -> Vec<u8> {
    format!("natter-hello-v1\n{nonce}\n{name}").into_bytes()
}

/// base64url without padding, as every binary field of the protocol is written.
pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The inverse of [`encode`]; `None` for anything else.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// A public key as `hello` carries it, if it is one.
pub fn parse_key(key: &str) -> Option<VerifyingKey> {
    let bytes: [u8; 32] = decode(key)?.try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// Whether `signature` (base64url) is `key`'s signature of the challenge `nonce` for `name`.
pub fn verify(key: &VerifyingKey, nonce: &str, name: &str, signature: &str) -> bool {
    let Some(bytes) = decode(signature).and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
        return false;
    };
    key.verify_strict(
        &challenge_message(nonce, name),
        &Signature::from_bytes(&bytes),
    )
    .is_ok()
}

/// The client's side: the signature (base64url) that answers `nonce` for `name`.
pub fn sign(key: &SigningKey, nonce: &str, name: &str) -> String {
    encode(&key.sign(&challenge_message(nonce, name)).to_bytes())
}

/// A key's public half, as `hello` carries it.
pub fn public_key(key: &SigningKey) -> String {
    encode(key.verifying_key().as_bytes())
}

/// A certificate's fingerprint as natter shows and pins it: `SHA256:` and the base64 (no padding) of the
/// SHA-256 of its DER bytes — the form SSH uses for host keys.
pub fn fingerprint(der: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use sha2::Digest;
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(sha2::Sha256::digest(der))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_proves_one_name_for_one_nonce() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = parse_key(&public_key(&key)).unwrap();
        let sig = sign(&key, "nonce-1", "bob");
        assert!(verify(&public, "nonce-1", "bob", &sig));
        assert!(!verify(&public, "nonce-2", "bob", &sig), "another nonce");
        assert!(!verify(&public, "nonce-1", "alice", &sig), "another name");
        let other = SigningKey::from_bytes(&[8; 32]);
        assert!(!verify(
            &public,
            "nonce-1",
            "bob",
            &sign(&other, "nonce-1", "bob")
        ));
        assert!(!verify(&public, "nonce-1", "bob", "not base64!"));
        assert!(parse_key("short").is_none());
    }
}
