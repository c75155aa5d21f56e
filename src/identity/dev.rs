//! A fake My Number Card for local demos and tests. It proves nothing: the production profile
//! refuses to enable it.

use super::{BasicFacts, VerifiedIdentity};
use crate::forms::Assurance;

/// The identity the fake card asserts for `subject`, with fictional basic facts (as the Digital
/// Authentication App would give), so demos show them where a procedure keeps them.
pub fn identity(subject: &str) -> VerifiedIdentity {
    VerifiedIdentity {
        provider: "dev",
        issuer: "dev".to_owned(),
        subject: subject.to_owned(),
        assurance: Assurance::CardAuth,
        email: None,
        facts: Some(BasicFacts {
            name: Some("窓口\u{3000}試子".to_owned()),
            gender: Some("female".to_owned()),
            birth_date: Some("1990-04-01".to_owned()),
            address: Some("石川県加賀市大聖寺南町ニ４１".to_owned()),
            ..BasicFacts::default()
        }),
    }
}

/// The development signer: signs `payload` as a card-sign application's signature (a detached
/// CMS, SHA-256, DER) with a test card's signature certificate and key, through `openssl cms`,
/// so that what the pages send is verified exactly like a real card's signature. Only the
/// `portal.signer = "dev"` setting uses it (the production profile refuses that).
pub async fn sign(certificate: &str, key: &str, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("openssl")
        .args([
            "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER",
        ])
        .arg("-signer")
        .arg(certificate)
        .arg("-inkey")
        .arg(key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting openssl for the dev signer")?;
    let mut stdin = child.stdin.take().context("openssl's stdin")?;
    stdin.write_all(payload).await?;
    drop(stdin);
    let output = child.wait_with_output().await?;
    anyhow::ensure!(
        output.status.success() && !output.stdout.is_empty(),
        "openssl cms -sign failed ({})",
        output.status
    );
    Ok(output.stdout)
}
