//! The node's credentials, received at enrollment: who the node is to the broker and to the
//! controller, and whom it trusts. One file, `<data-dir>/credentials` (0600).
//!
//! Reading it needs no write, so an agent on a full disk still starts.

use std::io;
use std::path::{Path, PathBuf};

use drover_proto::keys::{PublicKey, SigningKey};
use serde::{Deserialize, Serialize};

const FILE: &str = "credentials";
/// Version of the file's layout.
const FORMAT: u8 = 1;

/// What a node holds after enrollment.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    /// The node name it enrolled under (its MQTT user name).
    pub node: String,
    /// Seed of the node's signing key.
    pub key_seed: [u8; 32],
    /// MQTT password.
    pub password: String,
    /// The controller's key: desired states must carry its seal.
    pub controller_key: PublicKey,
    /// The CA (DER) the broker's certificate must chain to.
    pub ca_der: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ node: {}, key: {}, controller: {} }}",
            self.node,
            self.signing_key().public(),
            self.controller_key
        )
    }
}

impl Credentials {
    /// The node's signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_seed(self.key_seed)
    }

    /// Where they live in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE)
    }

    /// The stored credentials; `None` when the node has not enrolled yet.
    pub fn load(data_dir: &Path) -> io::Result<Option<Credentials>> {
        let path = Credentials::path(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let corrupt = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is damaged; remove it, delete the node (drover delete node NAME) and enroll it again with a new token",
                    path.display()
                ),
            )
        };
        let (&format, body) = bytes.split_first().ok_or_else(corrupt)?;
        if format != FORMAT || body.len() < 4 {
            return Err(corrupt());
        }
        let (payload, checksum) = body.split_at(body.len() - 4);
        if crc32fast::hash(payload).to_le_bytes() != checksum {
            return Err(corrupt());
        }
        postcard::from_bytes(payload)
            .map(Some)
            .map_err(|_| corrupt())
    }

    /// Stores them (0600, atomically and durably).
    pub fn save(&self, data_dir: &Path) -> io::Result<()> {
        let payload = postcard::to_stdvec(self).map_err(io::Error::other)?;
        let mut bytes = vec![FORMAT];
        bytes.extend_from_slice(&payload);
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        crate::identity::write_atomically(&Credentials::path(data_dir), &bytes, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn credentials() -> Credentials {
        Credentials {
            node: "pi".into(),
            key_seed: [3; 32],
            password: "pw".into(),
            controller_key: PublicKey([4; 32]),
            ca_der: vec![1, 2, 3],
        }
    }

    #[test]
    fn credentials_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Credentials::load(dir.path()).unwrap(), None);
        credentials().save(dir.path()).unwrap();
        assert_eq!(Credentials::load(dir.path()).unwrap(), Some(credentials()));
        let mode = std::fs::metadata(Credentials::path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_flipped_bit_is_reported_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        credentials().save(dir.path()).unwrap();
        let path = Credentials::path(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[5] ^= 0x10;
        std::fs::write(&path, bytes).unwrap();
        let error = Credentials::load(dir.path()).unwrap_err();
        assert!(
            error.to_string().contains("credentials is damaged"),
            "{error}"
        );
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let text = format!("{:?}", credentials());
        assert!(!text.contains("pw"));
    }
}
