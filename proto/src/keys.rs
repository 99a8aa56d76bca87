//! Ed25519 keys: the controller signs every desired state and enrollment reply, each node
//! signs everything it publishes. Keys are kept as their 32-byte seeds.

use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

/// Length of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// A private signing key.
pub struct SigningKey {
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// The key with this seed.
    pub fn from_seed(seed: [u8; 32]) -> SigningKey {
        // Every 32-byte string is a valid Ed25519 seed.
        let pair = match Ed25519KeyPair::from_seed_unchecked(&seed) {
            Ok(pair) => pair,
            Err(_) => unreachable_seed(),
        };
        SigningKey { seed, pair }
    }

    /// A new random key.
    pub fn generate() -> Result<SigningKey, crate::random::RandomError> {
        Ok(SigningKey::from_seed(crate::random::random_bytes::<32>()?))
    }

    /// The seed, for storing the key.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        let mut signature = [0u8; SIGNATURE_BYTES];
        signature.copy_from_slice(self.pair.sign(message).as_ref());
        signature
    }
}

#[cold]
fn unreachable_seed() -> ! {
    // ring documents from_seed_unchecked as failing only for seeds of the wrong length,
    // which the type rules out.
    std::process::abort()
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public())
    }
}

impl Clone for SigningKey {
    fn clone(&self) -> SigningKey {
        SigningKey::from_seed(self.seed)
    }
}

/// A public key that verifies signatures.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Whether `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }

    /// Parses the hex form.
    pub fn from_hex(text: &str) -> Option<PublicKey> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut key).ok()?;
        Some(PublicKey(key))
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", &hex::encode(self.0)[..16])
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, message);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Compares secrets in constant time.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_key_and_message() {
        let key = SigningKey::from_seed([7; 32]);
        let other = SigningKey::from_seed([8; 32]);
        let signature = key.sign(b"hello");
        assert!(key.public().verifies(b"hello", &signature));
        assert!(!key.public().verifies(b"hellO", &signature));
        assert!(!other.public().verifies(b"hello", &signature));
        assert!(!key.public().verifies(b"hello", &signature[..63]));
    }

    #[test]
    fn a_key_is_restored_from_its_seed() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_seed(*key.seed());
        assert_eq!(key.public(), again.public());
        assert_eq!(
            PublicKey::from_hex(&key.public().to_string()),
            Some(key.public())
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
