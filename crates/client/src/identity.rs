//! The key that makes a name yours: an Ed25519 key pair kept in the client's data directory.
//!
//! `natter join` sends the public half in every `hello` and signs the server's challenge with the private
//! half (PROTOCOL.md, *Owned names*): the first time a name is used with this key it becomes this key's,
//! and from then on only a client holding the key (or, later, the name's password) can use it. The file is
//! created with mode 0600 in a directory with mode 0700; its content is never printed or logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use natter_proto::auth::{self, SigningKey};

/// The key file inside the data directory.
pub const KEY_FILE: &str = "identity.key";

/// The platform's data directory for natter (`~/.local/share/natter` on Linux).
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "natter").map(|d| d.data_dir().to_owned())
}

/// The key in `dir`, created on first use.
pub fn load_or_create(dir: &Path) -> std::io::Result<SigningKey> {
    let path = dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = auth::decode(text.trim())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        natter_i18n::t!("key-not-a-key", path = path.display().to_string()),
                    )
                })?;
            Ok(SigningKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(dir, &path),
        Err(e) => Err(e),
    }
}

fn create(dir: &Path, path: &Path) -> std::io::Result<SigningKey> {
    use rand_core::OsRng;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let key = SigningKey::generate(&mut OsRng);
    let mut options = std::fs::OpenOptions::new();
    // create_new: two clients starting at once never overwrite each other's key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(auth::encode(&key.to_bytes()).as_bytes())?;
            file.sync_all()?;
            Ok(key)
        }
        // The other one won: use its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(dir),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("natter");
        let first = load_or_create(&data).unwrap();
        let again = load_or_create(&data).unwrap();
        assert_eq!(first.to_bytes(), again.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data.join(KEY_FILE)), 0o600);
            assert_eq!(mode(&data), 0o700);
        }
        std::fs::write(data.join(KEY_FILE), "garbage").unwrap();
        assert!(load_or_create(&data).is_err());
    }
}
