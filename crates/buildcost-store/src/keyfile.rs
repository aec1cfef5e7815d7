//! The pseudonym key file: created once with random bytes and mode 0600, then only read.

use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Reads the key at `path`, creating it with [`buildcost_model::KEY_LEN`] random bytes and
/// mode 0600 when it does not exist. The key's bytes are never logged.
///
/// # Errors
/// The file cannot be read or created, or it is empty.
pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) if key.is_empty() => Err(Error::Key {
            path: path.into(),
            message:
                "the file is empty; delete it to have a new key generated (author keys will change)"
                    .into(),
        }),
        Ok(key) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// Reads the key at `path`, which must exist and not be empty: for a store on an object store,
/// where N replicas creating their own key would pseudonymise the same author N ways, the key
/// is a mounted secret and never created (nor written to the bucket). The key's bytes are
/// never logged.
///
/// # Errors
/// The file is missing, empty or unreadable; the message names `privacy.pseudonym_key_file`.
pub fn load_existing_key(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) if !key.is_empty() => Ok(key),
        Ok(_) => Err(Error::Key {
            path: path.into(),
            message: "privacy.pseudonym_key_file is empty; with an object store the key is never created: write 32 random bytes to it once (`head -c 32 /dev/urandom`) and give every replica the same file".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Key {
            path: path.into(),
            message: "privacy.pseudonym_key_file does not exist; with an object store the key is never created: write 32 random bytes to it once (`head -c 32 /dev/urandom`) and mount the same file (a Secret) in every replica".into(),
        }),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

fn create(path: &Path) -> Result<Vec<u8>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(Error::io("create folder", parent))?;
    }
    let mut key = vec![0u8; buildcost_model::KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| Error::Key {
        path: path.into(),
        message: format!("no randomness from the operating system: {e}"),
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&key).map_err(Error::io("write", path))?;
            file.sync_all().map_err(Error::io("sync", path))?;
            tracing::info!(path = %path.display(), "created a new pseudonym key file (mode 0600)");
            Ok(key)
        }
        // Another process created it between our read and our create: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_key(path),
        Err(e) => Err(Error::io("create", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_mode_0600_then_reads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/pseudonym.key");
        let a = load_or_create_key(&path).unwrap();
        assert_eq!(a.len(), buildcost_model::KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(load_or_create_key(&path).unwrap(), a);
        let other = load_or_create_key(&dir.path().join("other.key")).unwrap();
        assert_ne!(other, a);
    }

    #[test]
    fn an_existing_key_is_required_and_never_created_for_an_object_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let missing = load_existing_key(&path).unwrap_err().to_string();
        assert!(missing.contains("privacy.pseudonym_key_file"), "{missing}");
        assert!(!path.exists());
        std::fs::write(&path, b"").unwrap();
        let empty = load_existing_key(&path).unwrap_err().to_string();
        assert!(empty.contains("is empty"), "{empty}");
        std::fs::write(&path, b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(load_existing_key(&path).unwrap().len(), 32);
    }

    #[test]
    fn an_empty_key_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"").unwrap();
        assert!(load_or_create_key(&path)
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
