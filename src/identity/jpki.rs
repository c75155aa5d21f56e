//! JPKI (My Number Card) provider: proves who holds a card, and checks what the card signed.
//!
//! This module owns the card-facing cryptography and nothing else:
//! - the trust anchors (the J-LIS CAs from configuration) and the current CRL, refreshed in place;
//! - **login** with the user-authentication certificate (利用者証明用): an RSA PKCS#1 v1.5
//!   SHA-256 signature over a challenge, checked against a certificate that chains to a trust
//!   anchor, is valid now, is meant for authentication and is not revoked;
//! - **signatures** with the signature certificate (署名用): a detached CMS SignedData over the
//!   submission's bytes, with the same certificate checks, yielding [`SignatureEvidence`] that
//!   includes the basic facts (name, gender, date of birth, address) read from the certificate.
//!
//! Issuing and checking challenges, sessions and accounts live elsewhere ([`super::challenge`],
//! [`super::session`], [`super::residents`]).
//!
//! Libraries: `rustls-webpki` builds the chain, checks validity and revocation and verifies RSA
//! signatures (with *ring*); `x509-parser` reads what webpki does not expose (key usage bits, the
//! otherName facts, the issuer as text); `cms` decodes the SignedData.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::{AnyRef, ObjectIdentifier, Utf8StringRef};
use der::{Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, SignatureVerificationAlgorithm, TrustAnchor,
    UnixTime,
};
use sha2::{Digest, Sha256};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, ExtendedKeyUsageValidator,
    KeyPurposeIdIter, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use super::{AuthError, BasicFacts, VerifiedIdentity};
use crate::config::JpkiSettings;
use crate::forms::Assurance;

/// The card signs with RSA-2048 PKCS#1 v1.5 over SHA-256, for the challenge and for CMS alike.
static CARD_SIGNATURE_ALGORITHM: &dyn SignatureVerificationAlgorithm =
    webpki::ring::RSA_PKCS1_2048_8192_SHA256;

/// Algorithms accepted for the CA's signatures on certificates and CRLs. J-LIS uses
/// sha256WithRSAEncryption today; accepting webpki's whole (modern) list costs nothing and
/// survives a CA key roll to another algorithm.
static CHAIN_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = webpki::ALL_VERIFICATION_ALGS;

/// How long a CRL download may take. J-LIS CRLs are large; a stuck server must not hold a refresh
/// (and the flag that keeps other refreshes out) forever.
const CRL_FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// After a failed refresh, wait this long (or `crl_refresh_seconds`, if shorter) before trying
/// again, so a dead CRL server is not hit on every login.
const CRL_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(60);

const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_ATTR_CONTENT_TYPE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const OID_ATTR_MESSAGE_DIGEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");

/// Extended key usages (DER OID contents) that allow a certificate to sign documents: S/MIME
/// (`id-kp-emailProtection`, what CMS signing traditionally uses), `id-kp-documentSigning`
/// (RFC 9336) and `anyExtendedKeyUsage`.
const EKU_EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];
const EKU_DOCUMENT_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x24];
const EKU_ANY: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// The basic facts on the signature certificate: subjectAltName otherName `1.2.392.200149.8.5.5.N`.
const BASIC_FACT_OID_PREFIX: &str = "1.2.392.200149.8.5.5.";

/// What is kept with a signed submission to show later who signed what, and what we knew when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEvidence {
    /// The signer's certificate, exactly as it was embedded in the CMS.
    pub certificate_der: Vec<u8>,
    /// SHA-256 of the signed content.
    pub digest: Vec<u8>,
    pub facts: BasicFacts,
    /// The moment the revocation answer speaks for: the `thisUpdate` of the CRL that covered the
    /// certificate (not when we looked, which is `verified_at`).
    pub revocation_checked_at: DateTime<Utc>,
    pub verified_at: DateTime<Utc>,
    /// provider `jpki`, assurance `card-sign`, subject = certificate serial (hex).
    pub signer: VerifiedIdentity,
}

/// Checks card logins and card signatures against the configured trust anchors and CRL.
///
/// Shared by all workers (put it in an `Arc`); verification only takes a read lock on the CRL.
pub struct JpkiVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    crl_source: CrlSource,
    crl_max_age: Duration,
    crl: RwLock<LoadedCrl>,
    /// Set while one refresh is in flight, so concurrent requests do not all download the CRL.
    refreshing: AtomicBool,
    /// No refresh before this moment after a failure.
    retry_not_before: Mutex<Option<Instant>>,
    http: reqwest::Client,
}

enum CrlSource {
    File(PathBuf),
    Url(String),
}

impl std::fmt::Display for CrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) => f.write_str(url),
        }
    }
}

/// One parsed CRL source. A PEM file may hold several CRLs (J-LIS runs separate CAs for the
/// authentication and the signature certificates, each with its own CRL).
struct LoadedCrl {
    lists: Vec<LoadedList>,
    loaded_at: Instant,
}

struct LoadedList {
    list: CertRevocationList<'static>,
    /// The issuer name as webpki holds it, to find which list answered for a certificate.
    issuer: Vec<u8>,
    this_update: DateTime<Utc>,
    next_update: Option<DateTime<Utc>>,
}

impl LoadedCrl {
    fn earliest_next_update(&self) -> Option<DateTime<Utc>> {
        self.lists.iter().filter_map(|l| l.next_update).min()
    }

    /// The `thisUpdate` of the newest list from `issuer`.
    fn this_update_for(&self, issuer: &[u8]) -> Option<DateTime<Utc>> {
        self.lists
            .iter()
            .filter(|l| l.issuer == issuer)
            .map(|l| l.this_update)
            .max()
    }
}

impl JpkiVerifier {
    /// Loads PEM trust anchors and the CRL (file, or http(s) URL fetched with reqwest).
    pub async fn from_settings(settings: &JpkiSettings) -> anyhow::Result<Self> {
        let mut anchors = Vec::new();
        for path in &settings.trust_anchors {
            let pem = tokio::fs::read(path)
                .await
                .with_context(|| format!("reading JPKI trust anchor {}", path.display()))?;
            let before = anchors.len();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.with_context(|| {
                    format!("JPKI trust anchor {} is not valid PEM", path.display())
                })?;
                let anchor = webpki::anchor_from_trusted_cert(&cert).map_err(|e| {
                    anyhow::anyhow!(
                        "JPKI trust anchor {} is not a certificate: {e}",
                        path.display()
                    )
                })?;
                anchors.push(anchor.to_owned());
            }
            if anchors.len() == before {
                anyhow::bail!(
                    "JPKI trust anchor file {} holds no PEM certificate",
                    path.display()
                );
            }
        }
        if anchors.is_empty() {
            anyhow::bail!("identity.jpki.trust_anchors is empty: no card could be trusted");
        }

        let crl_source = if settings.crl.starts_with("http://")
            || settings.crl.starts_with("https://")
        {
            CrlSource::Url(settings.crl.clone())
        } else if settings.crl.is_empty() {
            anyhow::bail!("identity.jpki.crl is empty: revocation cannot be checked without a CRL")
        } else {
            CrlSource::File(PathBuf::from(&settings.crl))
        };
        let http = reqwest::Client::builder()
            .timeout(CRL_FETCH_TIMEOUT)
            .build()
            .context("building the HTTP client for the JPKI CRL")?;
        let crl = load_crl(&crl_source, &http).await?;
        warn_if_past_next_update(&crl, &crl_source);
        Ok(Self {
            anchors,
            crl_source,
            crl_max_age: Duration::from_secs(settings.crl_refresh_seconds),
            crl: RwLock::new(crl),
            refreshing: AtomicBool::new(false),
            retry_not_before: Mutex::new(None),
            http,
        })
    }

    /// Re-reads the CRL when it is older than `crl_refresh_seconds` or past its `nextUpdate`.
    /// A failed refresh keeps the previous CRL and logs a warning.
    pub async fn refresh_crl_if_stale(&self) {
        if !self.crl_is_stale() {
            return;
        }
        let retry_not_before = *self
            .retry_not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if retry_not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return; // another request is already refreshing
        }
        // Clears the flag even if this future is dropped mid-download.
        let _refreshing = ClearOnDrop(&self.refreshing);

        match load_crl(&self.crl_source, &self.http).await {
            Ok(fresh) => {
                tracing::info!(source = %self.crl_source, lists = fresh.lists.len(), "JPKI CRL refreshed");
                // A CRL that is already past its nextUpdate stays "stale": back off as after a
                // failure instead of downloading it again on every request.
                let back_off = warn_if_past_next_update(&fresh, &self.crl_source);
                *self.crl.write().unwrap_or_else(PoisonError::into_inner) = fresh;
                *self
                    .retry_not_before
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = back_off
                    .then(|| Instant::now() + CRL_RETRY_AFTER_FAILURE.min(self.crl_max_age));
            }
            Err(error) => {
                tracing::warn!(
                    source = %self.crl_source,
                    error = format!("{error:#}"),
                    "JPKI CRL refresh failed; keeping the previous CRL"
                );
                *self
                    .retry_not_before
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    Some(Instant::now() + CRL_RETRY_AFTER_FAILURE.min(self.crl_max_age));
            }
        }
    }

    fn crl_is_stale(&self) -> bool {
        let crl = self.crl.read().unwrap_or_else(PoisonError::into_inner);
        crl.loaded_at.elapsed() >= self.crl_max_age
            || crl.earliest_next_update().is_some_and(|t| Utc::now() >= t)
    }

    /// Login: `signature` is RSA PKCS#1 v1.5 over SHA-256 of `challenge`, made with the card's
    /// user-authentication key. Checks the signature, the chain to a trust anchor, validity at
    /// `now`, key usage and revocation.
    pub fn verify_login(
        &self,
        challenge: &[u8],
        certificate_der: &[u8],
        signature: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedIdentity, AuthError> {
        let card = CardCertificate::parse(certificate_der)?;
        // Authentication needs digitalSignature. The signature certificate has it too, but it is
        // the one with nonRepudiation and the basic facts: it is unlocked with the signing
        // password for signing documents, and a login must not read the resident's name and
        // address. Refuse it here rather than trust the EKU check below, which it passes
        // (it has no EKU at all).
        if !card.digital_signature {
            return Err(AuthError::WrongCertificateUse);
        }
        if card.non_repudiation || card.facts != BasicFacts::default() {
            return Err(AuthError::WrongCertificateUse);
        }

        let der = CertificateDer::from(certificate_der);
        let end_entity = EndEntityCert::try_from(&der).map_err(malformed_certificate)?;
        // `client_auth()` = clientAuth required *if* the certificate lists EKUs (RFC 5280
        // 4.2.1.12). The test cards carry clientAuth; whether every real J-LIS authentication
        // certificate does is not confirmed, so a certificate without EKU is not refused for
        // that alone. A certificate whose EKUs exclude clientAuth is refused.
        self.verify_chain(&end_entity, &[], now, KeyUsage::client_auth())?;
        end_entity
            .verify_signature(CARD_SIGNATURE_ALGORITHM, challenge, signature)
            .map_err(|_| AuthError::BadSignature)?;

        Ok(VerifiedIdentity {
            provider: "jpki",
            issuer: card.issuer,
            subject: card.serial_hex,
            assurance: Assurance::CardAuth,
            email: None,
            // The authentication certificate carries no personal data.
            facts: None,
        })
    }

    /// Card signature of an application: a detached CMS SignedData (DER) over `content`, as
    /// `openssl cms -sign -binary -md sha256 -outform DER` makes it.
    ///
    /// The signer certificate must be inside the CMS. With signed attributes, their
    /// messageDigest must be SHA-256(content) and the RSA signature is over the DER of the
    /// attributes as a SET; without, it is over the content itself. The certificate is checked
    /// like a login's (chain, validity at `now`, revocation), for signing use.
    pub fn verify_signature(
        &self,
        cms_der: &[u8],
        content: &[u8],
        now: DateTime<Utc>,
    ) -> Result<SignatureEvidence, AuthError> {
        let cms = DetachedCms::parse(cms_der)?;
        let signer_der = cms.signer_certificate()?;
        let card = CardCertificate::parse(signer_der)?;
        if !(card.digital_signature || card.non_repudiation) {
            return Err(AuthError::WrongCertificateUse);
        }

        let der = CertificateDer::from(signer_der);
        let end_entity = EndEntityCert::try_from(&der).map_err(malformed_certificate)?;
        // Other certificates in the CMS may be intermediates; they are only path-building hints.
        let intermediates: Vec<CertificateDer<'_>> = cms
            .certificates
            .iter()
            .filter(|c| c.as_slice() != signer_der)
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let revocation_checked_at =
            self.verify_chain(&end_entity, &intermediates, now, SigningUse)?;

        let digest = Sha256::digest(content).to_vec();
        let signed_bytes = match &cms.signed_attributes {
            Some(attributes) => {
                if cms.message_digest()? != digest.as_slice() {
                    return Err(AuthError::BadSignature);
                }
                attributes.as_slice()
            }
            None => content,
        };
        end_entity
            .verify_signature(
                CARD_SIGNATURE_ALGORITHM,
                signed_bytes,
                cms.signer.signature.as_bytes(),
            )
            .map_err(|_| AuthError::BadSignature)?;

        Ok(SignatureEvidence {
            certificate_der: signer_der.to_vec(),
            digest,
            facts: card.facts,
            revocation_checked_at,
            verified_at: now,
            signer: VerifiedIdentity {
                provider: "jpki",
                issuer: card.issuer,
                subject: card.serial_hex,
                assurance: Assurance::CardSign,
                email: None,
                // They are in the evidence itself (`facts`).
                facts: None,
            },
        })
    }

    /// Chain to a trust anchor, validity at `now`, EKU policy `usage`, revocation of the card's
    /// certificate. Returns the `thisUpdate` of the CRL that answered.
    fn verify_chain(
        &self,
        end_entity: &EndEntityCert<'_>,
        intermediates: &[CertificateDer<'_>],
        now: DateTime<Utc>,
        usage: impl ExtendedKeyUsageValidator,
    ) -> Result<DateTime<Utc>, AuthError> {
        let seconds = u64::try_from(now.timestamp())
            .map_err(|_| AuthError::Internal(anyhow::anyhow!("verification time before 1970")))?;
        let time = UnixTime::since_unix_epoch(Duration::from_secs(seconds));

        let crl = self.crl.read().unwrap_or_else(PoisonError::into_inner);
        let lists: Vec<&CertRevocationList<'_>> = crl.lists.iter().map(|l| &l.list).collect();
        let revocation = RevocationOptionsBuilder::new(&lists)
            .map_err(|_| AuthError::Internal(anyhow::anyhow!("no JPKI CRL is loaded")))?
            // J-LIS CAs issue the cards directly and the configured CRLs are theirs; there is no
            // authority revocation list for the CAs to check.
            .with_depth(RevocationCheckDepth::EndEntity)
            // Fail closed: a card whose issuer has no CRL here is not accepted as "not revoked",
            // and neither is one checked against a CRL past its nextUpdate.
            .with_status_policy(UnknownStatusPolicy::Deny)
            .with_expiration_policy(ExpirationPolicy::Enforce)
            .build();
        end_entity
            .verify_for_usage(
                CHAIN_ALGORITHMS,
                &self.anchors,
                intermediates,
                time,
                usage,
                Some(revocation),
                None,
            )
            .map_err(chain_error)?;
        // Only the card's own certificate is checked, against the CRL of its issuer.
        crl.this_update_for(end_entity.issuer()).ok_or_else(|| {
            AuthError::Internal(anyhow::anyhow!(
                "revocation checked but no CRL from the card's issuer is loaded"
            ))
        })
    }
}

/// EKU policy for document signatures. The signature certificate has no EKU extension (none is
/// needed: RFC 5280 says no EKU means no restriction), so webpki's `KeyUsage::required(..)` would
/// refuse it, and `required_if_present(clientAuth)` would accept the *authentication*
/// certificate for signing. So: no EKU, or one that lists a signing purpose. The authentication
/// certificate (clientAuth only) is refused.
struct SigningUse;

impl ExtendedKeyUsageValidator for SigningUse {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut present = Vec::new();
        for purpose in iter {
            let purpose = purpose?;
            for allowed in [EKU_EMAIL_PROTECTION, EKU_DOCUMENT_SIGNING, EKU_ANY] {
                if purpose == webpki::KeyPurposeId::new(allowed) {
                    return Ok(());
                }
            }
            present.push(purpose.to_decoded_oid());
        }
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            webpki::RequiredEkuNotFoundContext {
                required: KeyUsage::required(EKU_DOCUMENT_SIGNING),
                present,
            },
        ))
    }
}

/// Maps webpki's verdict on the chain to what the resident is told.
fn chain_error(error: webpki::Error) -> AuthError {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } | E::CertNotValidYet { .. } => AuthError::CertificateExpired,
        E::CertRevoked => AuthError::CertificateRevoked,
        E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension | E::CaUsedAsEndEntity => {
            AuthError::WrongCertificateUse
        }
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::InvalidCertValidity
        | E::InvalidSerialNumber
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::UnsupportedCertVersion
        | E::UnsupportedCriticalExtension => malformed_certificate(error),
        // Our CRL, not the resident's card, is the problem: say so in the log, fail closed.
        E::CrlExpired { .. }
        | E::UnknownRevocationStatus
        | E::InvalidCrlSignatureForPublicKey
        | E::IssuerNotCrlSigner
        | E::UnsupportedCrlSignatureAlgorithmContext(_)
        | E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_)
        | E::UnsupportedRevocationReason
        | E::UnsupportedRevocationReasonsPartitioning
        | E::UnsupportedCrlIssuingDistributionPoint
        | E::UnsupportedIndirectCrl
        | E::UnsupportedDeltaCrl => AuthError::RevocationUnavailable(anyhow::anyhow!(
            "the configured JPKI CRL cannot answer for this certificate: {error}"
        )),
        // UnknownIssuer; InvalidSignatureForPublicKey (a look-alike CA with the same name);
        // unsupported algorithms; path limits — and anything newer: not trusted.
        _ => AuthError::UntrustedCertificate,
    }
}

fn malformed_certificate(error: webpki::Error) -> AuthError {
    AuthError::Malformed(format!("certificate is not valid DER X.509: {error}"))
}

/// What we read from a card certificate with x509-parser.
struct CardCertificate {
    /// The issuer DN as text (`C=JP, O=…, CN=…`).
    issuer: String,
    /// The serial as `openssl x509 -serial` prints it: upper-case hex, no leading zero bytes.
    serial_hex: String,
    digital_signature: bool,
    non_repudiation: bool,
    facts: BasicFacts,
}

impl CardCertificate {
    fn parse(der: &[u8]) -> Result<Self, AuthError> {
        let cert = parse_certificate(der)?;
        let bad = |what: &str| AuthError::Malformed(format!("certificate {what}"));
        let (digital_signature, non_repudiation) = match cert.key_usage() {
            Ok(Some(ku)) => (ku.value.digital_signature(), ku.value.non_repudiation()),
            // Every JPKI certificate states its key usage; one that does not is not a card's.
            Ok(None) => (false, false),
            Err(_) => return Err(bad("has an unreadable key usage")),
        };
        let facts = match cert.subject_alternative_name() {
            Ok(Some(san)) => basic_facts(&san.value.general_names)?,
            Ok(None) => BasicFacts::default(),
            Err(_) => return Err(bad("has an unreadable subjectAltName")),
        };
        Ok(Self {
            issuer: cert.issuer().to_string(),
            serial_hex: serial_hex(cert.raw_serial()),
            digital_signature,
            non_repudiation,
            facts,
        })
    }
}

fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, AuthError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(AuthError::Malformed(
            "certificate has trailing bytes".to_owned(),
        )),
        Err(_) => Err(AuthError::Malformed(
            "certificate is not valid DER X.509".to_owned(),
        )),
    }
}

fn serial_hex(raw: &[u8]) -> String {
    let significant = match raw.iter().position(|b| *b != 0) {
        Some(first) => &raw[first..],
        None => &[0u8][..],
    };
    hex::encode_upper(significant)
}

/// Reads the otherName facts `1.2.392.200149.8.5.5.1`–`.6`. Each value is
/// `[0] EXPLICIT UTF8String`; other general names are ignored.
fn basic_facts(names: &[GeneralName<'_>]) -> Result<BasicFacts, AuthError> {
    let mut facts = BasicFacts::default();
    for name in names {
        let GeneralName::OtherName(oid, value) = name else {
            continue;
        };
        let oid = oid.to_id_string();
        let Some(index) = oid.strip_prefix(BASIC_FACT_OID_PREFIX) else {
            continue;
        };
        let slot = match index {
            "1" => &mut facts.name,
            "2" => &mut facts.name_substitute,
            "3" => &mut facts.gender,
            "4" => &mut facts.birth_date,
            "5" => &mut facts.address,
            "6" => &mut facts.address_substitute,
            _ => continue,
        };
        let text = explicit_utf8_string(value).ok_or_else(|| {
            AuthError::Malformed(format!("certificate basic fact {oid} is not a UTF8String"))
        })?;
        *slot = Some(text);
    }
    Ok(facts)
}

fn explicit_utf8_string(value: &[u8]) -> Option<String> {
    let wrapper = AnyRef::from_der(value).ok()?;
    if wrapper.tag() != context_tag(0) {
        return None;
    }
    let text = Utf8StringRef::from_der(wrapper.value()).ok()?;
    Some(text.as_str().to_owned())
}

fn context_tag(number: u8) -> Tag {
    Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::new(number),
    }
}

/// A detached CMS SignedData with one signer.
struct DetachedCms {
    signer: SignerInfo,
    /// The certificates embedded in the CMS, byte for byte as they arrived.
    certificates: Vec<Vec<u8>>,
    /// The signed attributes re-tagged as a SET (0x31): the bytes the card signed.
    signed_attributes: Option<Vec<u8>>,
}

impl DetachedCms {
    fn parse(cms_der: &[u8]) -> Result<Self, AuthError> {
        let bad = |what: &str| AuthError::Malformed(format!("CMS signature {what}"));
        let info = ContentInfo::from_der(cms_der).map_err(|_| bad("is not DER ContentInfo"))?;
        if info.content_type != OID_SIGNED_DATA {
            return Err(bad("is not SignedData"));
        }
        let signed_data: SignedData = info
            .content
            .decode_as()
            .map_err(|_| bad("holds unreadable SignedData"))?;
        if signed_data.encap_content_info.econtent_type != OID_DATA {
            return Err(bad("does not sign plain data"));
        }
        if signed_data.encap_content_info.econtent.is_some() {
            return Err(bad("is not detached (it embeds the content)"));
        }
        let mut signers = signed_data.signer_infos.0.into_vec();
        if signers.len() != 1 {
            return Err(bad("must have exactly one signer"));
        }
        let signer = signers.remove(0);
        if signer.digest_alg.oid != OID_SHA256 {
            return Err(bad("must use SHA-256"));
        }
        if ![OID_RSA_ENCRYPTION, OID_SHA256_WITH_RSA].contains(&signer.signature_algorithm.oid) {
            return Err(bad("must be RSA PKCS#1 v1.5"));
        }

        // `cms` decodes SET OF by sorting, so re-encoding its values may not reproduce the bytes
        // the card signed. Take the certificates and the signed attributes from the input itself.
        let raw = RawSignedData::walk(cms_der).ok_or_else(|| bad("is not DER"))?;
        if raw.signed_attributes.is_some() != signer.signed_attrs.is_some() {
            return Err(bad("is not DER"));
        }
        Ok(Self {
            signer,
            certificates: raw.certificates,
            signed_attributes: raw.signed_attributes,
        })
    }

    /// The embedded certificate the SignerIdentifier names.
    fn signer_certificate(&self) -> Result<&[u8], AuthError> {
        let not_found = || {
            AuthError::Malformed("CMS signature does not embed the signer's certificate".to_owned())
        };
        for der in &self.certificates {
            let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
                continue;
            };
            let matches = match &self.signer.sid {
                SignerIdentifier::IssuerAndSerialNumber(id) => {
                    id.serial_number.as_bytes() == cert.raw_serial()
                        && id
                            .issuer
                            .to_der()
                            .is_ok_and(|issuer| issuer == cert.issuer().as_raw())
                }
                SignerIdentifier::SubjectKeyIdentifier(id) => cert.iter_extensions().any(|ext| {
                    matches!(ext.parsed_extension(),
                            ParsedExtension::SubjectKeyIdentifier(key) if key.0 == id.0.as_bytes())
                }),
            };
            if matches {
                return Ok(der);
            }
        }
        Err(not_found())
    }

    /// The messageDigest signed attribute. RFC 5652 requires it (and contentType) whenever
    /// signed attributes are present.
    fn message_digest(&self) -> Result<&[u8], AuthError> {
        let bad = |what: &str| AuthError::Malformed(format!("CMS signed attributes {what}"));
        let attributes = self
            .signer
            .signed_attrs
            .as_ref()
            .ok_or_else(|| bad("are missing"))?;
        let single_value = |oid: ObjectIdentifier| {
            let mut found = attributes.iter().filter(|a| a.oid == oid);
            match (found.next(), found.next()) {
                (Some(attribute), None) if attribute.values.len() == 1 => {
                    attribute.values.get(0).ok_or_else(|| bad("are malformed"))
                }
                _ => Err(bad("need exactly one contentType and one messageDigest")),
            }
        };
        let content_type: ObjectIdentifier = single_value(OID_ATTR_CONTENT_TYPE)?
            .decode_as()
            .map_err(|_| bad("have an unreadable contentType"))?;
        if content_type != OID_DATA {
            return Err(bad("name another content type"));
        }
        let digest = single_value(OID_ATTR_MESSAGE_DIGEST)?;
        if digest.tag() != Tag::OctetString {
            return Err(bad("have an unreadable messageDigest"));
        }
        Ok(digest.value())
    }
}

/// The raw bytes `DetachedCms` needs, found by walking the DER:
/// `ContentInfo { oid, [0] { SignedData { version, digestAlgorithms, encapContentInfo,
/// [0] certificates?, [1] crls?, signerInfos } } }`.
struct RawSignedData {
    certificates: Vec<Vec<u8>>,
    signed_attributes: Option<Vec<u8>>,
}

impl RawSignedData {
    fn walk(cms_der: &[u8]) -> Option<Self> {
        let content_info = AnyRef::from_der(cms_der).ok()?;
        let explicit = der_children(content_info.value())?.into_iter().nth(1)?;
        let signed_data = der_children(explicit.value())?.into_iter().next()?;
        let fields = der_children(signed_data.value())?;

        let mut certificates = Vec::new();
        if let Some(set) = fields.iter().find(|f| f.tag() == context_tag(0)) {
            for choice in der_children(set.value())? {
                // Other choices (attribute certificates, …) are not X.509 certificates.
                if choice.tag() == Tag::Sequence {
                    certificates.push(choice.to_der().ok()?);
                }
            }
        }
        let signer_infos = der_children(fields.last()?.value())?;
        let [signer_info] = signer_infos.as_slice() else {
            return None;
        };
        let signed_attributes = match der_children(signer_info.value())?
            .into_iter()
            .find(|f| f.tag() == context_tag(0))
        {
            // Signed over as `SET OF Attribute` (RFC 5652 5.4), not with the [0] tag it travels in.
            Some(attributes) => Some(
                AnyRef::new(Tag::Set, attributes.value())
                    .ok()?
                    .to_der()
                    .ok()?,
            ),
            None => None,
        };
        Some(Self {
            certificates,
            signed_attributes,
        })
    }
}

fn der_children(bytes: &[u8]) -> Option<Vec<AnyRef<'_>>> {
    let mut reader = SliceReader::new(bytes).ok()?;
    let mut children = Vec::new();
    while !reader.is_finished() {
        children.push(AnyRef::decode(&mut reader).ok()?);
    }
    Some(children)
}

/// Card checks fail closed against a CRL past its nextUpdate; say so where operators look.
fn warn_if_past_next_update(crl: &LoadedCrl, source: &CrlSource) -> bool {
    let past = crl.earliest_next_update().is_some_and(|t| Utc::now() >= t);
    if past {
        tracing::warn!(
            source = %source,
            "the JPKI CRL is past its nextUpdate: card logins and signatures will be refused until a newer CRL is loaded"
        );
    }
    past
}

async fn load_crl(source: &CrlSource, http: &reqwest::Client) -> anyhow::Result<LoadedCrl> {
    let bytes = match source {
        CrlSource::File(path) => tokio::fs::read(path)
            .await
            .with_context(|| format!("reading the JPKI CRL from {}", path.display()))?,
        CrlSource::Url(url) => fetch(http, url, MAX_CRL_BYTES)
            .await
            .with_context(|| format!("fetching the JPKI CRL from {url}"))?,
    };
    let lists = parse_crls(&bytes).with_context(|| format!("the JPKI CRL from {source}"))?;
    Ok(LoadedCrl {
        lists,
        loaded_at: Instant::now(),
    })
}

/// The largest CRL downloaded. J-LIS CRLs list many revoked cards and are large, but a server
/// (or whoever sits between it and us) must not be able to make us buffer without end.
const MAX_CRL_BYTES: usize = 256 * 1024 * 1024;

async fn fetch(http: &reqwest::Client, url: &str, max_bytes: usize) -> anyhow::Result<Vec<u8>> {
    let mut response = http.get(url).send().await?.error_for_status()?;
    if response
        .content_length()
        .is_some_and(|length| length > max_bytes as u64)
    {
        anyhow::bail!("the CRL is larger than {max_bytes} bytes");
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if bytes.len() + chunk.len() > max_bytes {
            anyhow::bail!("the CRL is larger than {max_bytes} bytes");
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// DER (one CRL), or PEM (one or more `X509 CRL` blocks).
fn parse_crls(bytes: &[u8]) -> anyhow::Result<Vec<LoadedList>> {
    let ders: Vec<Vec<u8>> = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
        CertificateRevocationListDer::pem_slice_iter(bytes)
            .map(|crl| crl.map(|crl| crl.as_ref().to_vec()))
            .collect::<Result<_, _>>()
            .context("is not valid PEM")?
    } else {
        vec![bytes.to_vec()]
    };
    if ders.is_empty() {
        anyhow::bail!("holds no CRL");
    }
    ders.iter()
        .map(|der| {
            let list = OwnedCertRevocationList::from_der(der)
                .map_err(|e| anyhow::anyhow!("is not a CRL webpki accepts: {e}"))?;
            let (_, parsed) = x509_parser::parse_x509_crl(der)
                .map_err(|e| anyhow::anyhow!("is not a readable CRL: {e}"))?;
            let time = |t: x509_parser::time::ASN1Time| DateTime::from_timestamp(t.timestamp(), 0);
            let list = CertRevocationList::from(list);
            Ok(LoadedList {
                issuer: list.issuer().to_vec(),
                list,
                this_update: time(parsed.last_update()).context("has an impossible thisUpdate")?,
                next_update: parsed.next_update().and_then(time),
            })
        })
        .collect()
}

struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::OnceLock;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// The test PKI, made once per test binary by the fixture script (about 2–4 s).
    fn pki() -> &'static Path {
        static PKI: OnceLock<tempfile::TempDir> = OnceLock::new();
        PKI.get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("madoguchi-jpki-")
                .tempdir()
                .expect("temp dir");
            let status = Command::new("bash")
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/pki/make-test-pki.sh"
                ))
                .arg(dir.path())
                .env("MAKE_TEST_PKI_QUIET", "1")
                .status()
                .expect("run make-test-pki.sh");
            assert!(status.success(), "make-test-pki.sh failed");
            dir
        })
        .path()
    }

    fn file(name: &str) -> PathBuf {
        pki().join(name)
    }

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(file(name)).expect(name)
    }

    fn settings(crl: &str) -> JpkiSettings {
        JpkiSettings {
            trust_anchors: vec![file("root-ca.pem")],
            crl: crl.to_owned(),
            crl_refresh_seconds: 3600,
        }
    }

    async fn verifier() -> JpkiVerifier {
        let crl = file("crl.der");
        JpkiVerifier::from_settings(&settings(crl.to_str().expect("utf-8 path")))
            .await
            .expect("verifier from the test PKI")
    }

    fn openssl(args: &[&str]) -> Vec<u8> {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .expect("run openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// What the card does at login: RSA PKCS#1 v1.5 over SHA-256 with `<card>.key`.
    fn card_sign(card: &str, data: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("challenge.bin");
        std::fs::write(&input, data).expect("write challenge");
        let key = file(&format!("{card}.key"));
        openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            key.to_str().expect("utf-8"),
            input.to_str().expect("utf-8"),
        ])
    }

    /// A detached CMS SignedData over `content` by `<card>`, as the fixture README describes.
    fn cms_sign(card: &str, content: &[u8], extra: &[&str]) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("submission.json");
        std::fs::write(&input, content).expect("write content");
        let cert = file(&format!("{card}.pem"));
        let key = file(&format!("{card}.key"));
        let mut args = vec![
            "cms",
            "-sign",
            "-binary",
            "-md",
            "sha256",
            "-signer",
            cert.to_str().expect("utf-8"),
            "-inkey",
            key.to_str().expect("utf-8"),
            "-in",
            input.to_str().expect("utf-8"),
            "-outform",
            "DER",
        ];
        args.extend_from_slice(extra);
        openssl(&args)
    }

    /// The serial as `openssl x509 -serial` prints it.
    fn openssl_serial(card: &str) -> String {
        let pem = file(&format!("{card}.pem"));
        let out = openssl(&[
            "x509",
            "-noout",
            "-serial",
            "-in",
            pem.to_str().expect("utf-8"),
        ]);
        String::from_utf8(out)
            .expect("utf-8")
            .trim()
            .trim_start_matches("serial=")
            .to_owned()
    }

    fn login(verifier: &JpkiVerifier, card: &str) -> Result<VerifiedIdentity, AuthError> {
        let challenge = b"madoguchi login challenge 0123456789abcdef";
        let signature = card_sign(card, challenge);
        verifier.verify_login(
            challenge,
            &read(&format!("{card}.der")),
            &signature,
            Utc::now(),
        )
    }

    const SUBMISSION: &[u8] =
        "{\"form\":\"juminhyo\",\"fields\":{\"purpose\":\"住民票の写し\"}}\n".as_bytes();

    #[tokio::test]
    async fn alice_logs_in_with_her_authentication_certificate() {
        let identity = login(&verifier().await, "auth-alice").expect("alice logs in");
        assert_eq!(identity.provider, "jpki");
        assert_eq!(identity.assurance, Assurance::CardAuth);
        assert_eq!(identity.subject, openssl_serial("auth-alice"));
        assert_eq!(
            identity.issuer,
            "C=JP, O=Test, OU=madoguchi test fixtures - not J-LIS, CN=madoguchi Test JPKI Root CA"
        );
        assert_eq!(identity.email, None);
    }

    #[tokio::test]
    async fn a_signature_over_another_challenge_is_a_bad_signature() {
        let verifier = verifier().await;
        let signature = card_sign("auth-alice", b"the challenge we issued yesterday");
        let result = verifier.verify_login(
            b"the challenge we issued now",
            &read("auth-alice.der"),
            &signature,
            Utc::now(),
        );
        assert!(matches!(result, Err(AuthError::BadSignature)), "{result:?}");
    }

    #[tokio::test]
    async fn a_signature_by_another_cards_key_is_a_bad_signature() {
        let verifier = verifier().await;
        let challenge = b"challenge";
        // Bob's key signed, but Alice's certificate is presented.
        let signature = card_sign("auth-bob", challenge);
        let result =
            verifier.verify_login(challenge, &read("auth-alice.der"), &signature, Utc::now());
        assert!(matches!(result, Err(AuthError::BadSignature)), "{result:?}");
    }

    #[tokio::test]
    async fn an_expired_certificate_is_refused() {
        let result = login(&verifier().await, "auth-expired");
        assert!(
            matches!(result, Err(AuthError::CertificateExpired)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_not_yet_valid_certificate_is_refused() {
        let result = login(&verifier().await, "auth-notyet");
        assert!(
            matches!(result, Err(AuthError::CertificateExpired)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_certificate_from_a_look_alike_root_is_untrusted() {
        let result = login(&verifier().await, "auth-impostor");
        assert!(
            matches!(result, Err(AuthError::UntrustedCertificate)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn bobs_revoked_certificate_is_refused() {
        let result = login(&verifier().await, "auth-bob");
        assert!(
            matches!(result, Err(AuthError::CertificateRevoked)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn the_signature_certificate_cannot_be_used_to_log_in() {
        let result = login(&verifier().await, "sign-alice");
        assert!(
            matches!(result, Err(AuthError::WrongCertificateUse)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn garbage_instead_of_a_certificate_is_malformed() {
        let result = verifier().await.verify_login(
            b"challenge",
            b"not a certificate",
            b"not a signature",
            Utc::now(),
        );
        assert!(matches!(result, Err(AuthError::Malformed(_))), "{result:?}");
    }

    #[tokio::test]
    async fn alices_signed_submission_verifies_with_her_basic_facts() {
        let verifier = verifier().await;
        let cms = cms_sign("sign-alice", SUBMISSION, &[]);
        let now = Utc::now();
        let evidence = verifier
            .verify_signature(&cms, SUBMISSION, now)
            .expect("alice's signature verifies");

        assert_eq!(
            evidence.facts,
            BasicFacts {
                name: Some("加賀\u{3000}花子".to_owned()),
                name_substitute: Some("00000".to_owned()),
                gender: Some("2".to_owned()),
                birth_date: Some("319850401".to_owned()),
                address: Some("石川県加賀市大聖寺南町ニ４１".to_owned()),
                address_substitute: Some("00000000000000".to_owned()),
            }
        );
        assert_eq!(evidence.digest, Sha256::digest(SUBMISSION).to_vec());
        assert_eq!(evidence.certificate_der, read("sign-alice.der"));
        assert_eq!(evidence.verified_at, now);
        assert!(evidence.revocation_checked_at <= now);
        assert_eq!(evidence.signer.provider, "jpki");
        assert_eq!(evidence.signer.assurance, Assurance::CardSign);
        assert_eq!(evidence.signer.subject, openssl_serial("sign-alice"));
    }

    #[tokio::test]
    async fn the_fixture_sample_submission_verifies() {
        let evidence = verifier()
            .await
            .verify_signature(
                &read("sample-submission.p7s"),
                &read("sample-submission.json"),
                Utc::now(),
            )
            .expect("the fixture's CMS verifies");
        assert_eq!(evidence.facts.name.as_deref(), Some("加賀\u{3000}花子"));
    }

    #[tokio::test]
    async fn a_signature_without_signed_attributes_verifies_over_the_content() {
        let verifier = verifier().await;
        let cms = cms_sign("sign-alice", SUBMISSION, &["-noattr"]);
        assert!(
            verifier
                .verify_signature(&cms, SUBMISSION, Utc::now())
                .is_ok()
        );
        let result = verifier.verify_signature(&cms, b"other bytes", Utc::now());
        assert!(matches!(result, Err(AuthError::BadSignature)), "{result:?}");
    }

    #[tokio::test]
    async fn the_same_signature_over_changed_content_is_a_bad_signature() {
        let cms = cms_sign("sign-alice", SUBMISSION, &[]);
        let mut changed = SUBMISSION.to_vec();
        changed[10] ^= 0x01;
        let result = verifier()
            .await
            .verify_signature(&cms, &changed, Utc::now());
        assert!(matches!(result, Err(AuthError::BadSignature)), "{result:?}");
    }

    #[tokio::test]
    async fn a_signature_with_a_revoked_signature_certificate_is_refused() {
        let cms = cms_sign("sign-revoked", SUBMISSION, &[]);
        let result = verifier()
            .await
            .verify_signature(&cms, SUBMISSION, Utc::now());
        assert!(
            matches!(result, Err(AuthError::CertificateRevoked)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn the_authentication_certificate_cannot_sign_a_submission() {
        let cms = cms_sign("auth-alice", SUBMISSION, &[]);
        let result = verifier()
            .await
            .verify_signature(&cms, SUBMISSION, Utc::now());
        assert!(
            matches!(result, Err(AuthError::WrongCertificateUse)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn garbage_instead_of_a_cms_is_malformed() {
        let result = verifier()
            .await
            .verify_signature(b"not a cms", SUBMISSION, Utc::now());
        assert!(matches!(result, Err(AuthError::Malformed(_))), "{result:?}");
    }

    #[tokio::test]
    async fn a_crl_file_in_der_or_pem_is_loaded_and_used() {
        for name in ["crl.der", "crl.pem"] {
            let crl = file(name);
            let verifier = JpkiVerifier::from_settings(&settings(crl.to_str().expect("utf-8")))
                .await
                .expect(name);
            // Revocation only works if the file's CRL was read.
            let result = login(&verifier, "auth-bob");
            assert!(
                matches!(result, Err(AuthError::CertificateRevoked)),
                "{name}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_crl_url_is_fetched() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let crl = read("crl.der");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 4096];
            let _ = socket.read(&mut request).await.expect("read request");
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                crl.len()
            );
            socket.write_all(head.as_bytes()).await.expect("write");
            socket.write_all(&crl).await.expect("write");
        });

        let url = format!("http://{address}/jpki.crl");
        let verifier = JpkiVerifier::from_settings(&settings(&url))
            .await
            .expect("CRL from URL");
        server.await.expect("server");
        let result = login(&verifier, "auth-bob");
        assert!(
            matches!(result, Err(AuthError::CertificateRevoked)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_crl_download_stops_at_the_size_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        // No content-length: the body only ends when the server closes, so only counting the
        // bytes as they come can stop it.
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = vec![0u8; 4096];
            let _ = socket.read(&mut request).await.expect("read request");
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\nconnection: close\r\n\r\n";
            socket.write_all(head.as_bytes()).await.expect("write");
            for _ in 0..64 {
                if socket.write_all(&[0u8; 1024]).await.is_err() {
                    break; // the client gave up, as it should
                }
            }
        });
        let http = reqwest::Client::new();
        let url = format!("http://{address}/jpki.crl");

        let error = fetch(&http, &url, 4096).await.err().map(|e| e.to_string());

        assert_eq!(
            error.as_deref(),
            Some("the CRL is larger than 4096 bytes"),
            "{error:?}"
        );
        let _ = server.await;
    }

    #[tokio::test]
    async fn an_unreachable_crl_url_is_a_clear_startup_error() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let url = format!("http://127.0.0.1:{port}/jpki.crl");
        let error = JpkiVerifier::from_settings(&settings(&url))
            .await
            .err()
            .expect("an unreachable CRL must fail");
        let message = format!("{error:#}");
        assert!(
            message.contains("fetching the JPKI CRL from") && message.contains(&url),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_failed_refresh_keeps_the_previous_crl() {
        let dir = tempfile::tempdir().expect("temp dir");
        let crl = dir.path().join("crl.der");
        std::fs::copy(file("crl.der"), &crl).expect("copy CRL");
        let mut settings = settings(crl.to_str().expect("utf-8"));
        settings.crl_refresh_seconds = 0; // always stale
        let verifier = JpkiVerifier::from_settings(&settings)
            .await
            .expect("verifier");

        std::fs::write(&crl, b"not a CRL any more").expect("break the CRL");
        verifier.refresh_crl_if_stale().await;

        let result = login(&verifier, "auth-bob");
        assert!(
            matches!(result, Err(AuthError::CertificateRevoked)),
            "{result:?}"
        );
        assert!(login(&verifier, "auth-alice").is_ok());
    }

    #[tokio::test]
    async fn a_trust_anchor_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"").expect("write");
        let mut settings = settings(file("crl.der").to_str().expect("utf-8"));
        settings.trust_anchors = vec![empty];
        let error = JpkiVerifier::from_settings(&settings).await.err();
        assert!(error.is_some_and(|e| e.to_string().contains("holds no PEM certificate")),);
    }
}
