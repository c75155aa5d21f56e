//! Sealing of My Numbers (個人番号) inside stored answers: XChaCha20-Poly1305 with a key id, so
//! keys can be rotated (the first configured key seals, every key opens).
//!
//! A sealed value is the string `sealed:v1:<kid>:<base64(nonce ‖ ciphertext)>`; the procedure id
//! and field path are bound as associated data, so a sealed value cannot be moved to another field.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};

const PREFIX: &str = "sealed:v1:";

pub struct Sealer {
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Sealer")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("not a sealed value")]
    NotSealed,
    #[error("no key `{0}` to open this value")]
    UnknownKey(String),
    #[error("the sealed value is damaged or was moved")]
    Damaged,
}

impl Sealer {
    /// `kid:base64(32 bytes),…`; empty = a random key (development only).
    pub fn from_config(keys: &SecretString) -> anyhow::Result<Self> {
        let mut parsed = Vec::new();
        for entry in keys
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (kid, encoded) = entry
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("submissions.sealing_keys: expected kid:base64"))?;
            let bytes = BASE64
                .decode(encoded)
                .map_err(|_| anyhow::anyhow!("submissions.sealing_keys: `{kid}` is not base64"))?;
            anyhow::ensure!(
                bytes.len() == 32,
                "submissions.sealing_keys: `{kid}` must be 32 bytes"
            );
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| anyhow::anyhow!("submissions.sealing_keys: bad key `{kid}`"))?;
            parsed.push((kid.to_owned(), cipher));
        }
        if parsed.is_empty() {
            let key = crate::identity::challenge::random_bytes(32);
            let cipher = XChaCha20Poly1305::new_from_slice(&key)
                .map_err(|_| anyhow::anyhow!("random sealing key"))?;
            parsed.push(("ephemeral".to_owned(), cipher));
        }
        Ok(Self { keys: parsed })
    }

    pub fn seal(&self, plaintext: &str, context: &str) -> String {
        let (kid, cipher) = &self.keys[0];
        let nonce_bytes = crate::identity::challenge::random_bytes(24);
        let nonce = XNonce::from_slice(&nonce_bytes);
        // Encryption with a valid key and nonce cannot fail for inputs this small.
        let ciphertext = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut blob = nonce_bytes;
        blob.extend(ciphertext);
        format!("{PREFIX}{kid}:{}", BASE64.encode(blob))
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SealError> {
        let rest = sealed.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
        let (kid, encoded) = rest.split_once(':').ok_or(SealError::Damaged)?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(id, _)| id == kid)
            .ok_or_else(|| SealError::UnknownKey(kid.to_owned()))?;
        let blob = BASE64.decode(encoded).map_err(|_| SealError::Damaged)?;
        if blob.len() < 24 {
            return Err(SealError::Damaged);
        }
        let (nonce, ciphertext) = blob.split_at(24);
        let plaintext = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(plaintext).map_err(|_| SealError::Damaged)
    }

    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }
}

/// `********9018`: enough for the resident to recognise their number, useless to anyone else.
pub fn mask(my_number: &str) -> String {
    let last: String = my_number
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("********{last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_rotate_and_bind_context() {
        let old = SecretString::from(format!("k1:{}", BASE64.encode([7u8; 32])));
        let sealer = Sealer::from_config(&old).unwrap();
        let sealed = sealer.seal("123456789018", "p/my_number");
        assert!(!sealed.contains("123456789018"));
        assert_eq!(sealer.open(&sealed, "p/my_number").unwrap(), "123456789018");
        assert!(matches!(
            sealer.open(&sealed, "p/other_field"),
            Err(SealError::Damaged)
        ));

        let rotated = SecretString::from(format!(
            "k2:{},k1:{}",
            BASE64.encode([9u8; 32]),
            BASE64.encode([7u8; 32])
        ));
        let rotated = Sealer::from_config(&rotated).unwrap();
        assert_eq!(
            rotated.open(&sealed, "p/my_number").unwrap(),
            "123456789018"
        );
        assert!(rotated.seal("1", "c").starts_with("sealed:v1:k2:"));
        assert_eq!(mask("123456789018"), "********9018");
    }
}
