//! Randomness for keys, secrets and UIDs: the one call into the operating system that this
//! crate makes (the kernel's CSPRNG through `ring`).

use ring::rand::{SecureRandom, SystemRandom};

/// Why no random bytes could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the system's random number generator failed")]
pub struct RandomError;

/// `N` bytes from the system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(bytes)
}

/// A random RFC 4122 version-4 UUID, as Kubernetes gives objects.
pub fn new_uid() -> Result<String, RandomError> {
    Ok(uid_from_bytes(random_bytes::<16>()?))
}

/// The version-4 UUID made of `b`.
pub fn uid_from_bytes(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_version_4_and_differ() {
        let a = new_uid().unwrap();
        let b = new_uid().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }
}
