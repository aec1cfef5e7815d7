//! Pseudonymisation of identities (spec section 4).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, Result};

/// Turns an author into a stable, keyed, non-reversible `author_key`.
///
/// `author_key` = the first 16 hex characters of HMAC-SHA256(key, lower-case trimmed author).
/// The same author gives the same key for as long as the key file is kept; without the key
/// nobody can test a guessed name against a stored key.
#[derive(Clone)]
pub struct Pseudonymiser {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.write_str("Pseudonymiser { key: <redacted> }")
    }
}

/// Length of a freshly generated key, in bytes.
pub const KEY_LEN: usize = 32;

impl Pseudonymiser {
    /// A pseudonymiser for the given key bytes.
    ///
    /// # Errors
    /// An empty key: it would make every author key guessable.
    pub fn new(key: &[u8]) -> Result<Self> {
        if key.is_empty() {
            return Err(Error::PseudonymKey(
                "the key is empty; delete the key file to have a new one generated".into(),
            ));
        }
        let mac =
            Hmac::<Sha256>::new_from_slice(key).map_err(|e| Error::PseudonymKey(e.to_string()))?;
        Ok(Pseudonymiser { mac })
    }

    /// The `author_key` of an author (trimmed and lower-cased first).
    pub fn author_key(&self, author: &str) -> String {
        let normalised = author.trim().to_lowercase();
        let mut mac = self.mac.clone();
        mac.update(normalised.as_bytes());
        let digest = mac.finalize().into_bytes();
        hex::encode(&digest[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hmac_sha256_reference_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let p = Pseudonymiser::new(b"Jefe").unwrap();
        assert_eq!(
            p.author_key("what do ya want for nothing?"),
            "5bdcc146bf60754e"
        );
    }

    #[test]
    fn trims_and_lowercases_before_hashing() {
        let p = Pseudonymiser::new(b"k").unwrap();
        assert_eq!(
            p.author_key("  Alice@Example.COM "),
            p.author_key("alice@example.com")
        );
        assert_ne!(p.author_key("alice"), p.author_key("bob"));
        assert_eq!(p.author_key("alice").len(), 16);
    }

    #[test]
    fn different_keys_give_different_pseudonyms() {
        let a = Pseudonymiser::new(b"key-a").unwrap();
        let b = Pseudonymiser::new(b"key-b").unwrap();
        assert_ne!(a.author_key("alice"), b.author_key("alice"));
    }

    #[test]
    fn empty_key_is_refused_and_debug_hides_key() {
        assert!(Pseudonymiser::new(b"").is_err());
        let p = Pseudonymiser::new(b"secret-key-bytes").unwrap();
        assert!(!format!("{p:?}").contains("secret"));
    }
}
