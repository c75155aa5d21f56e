//! The definition language as Rust types (see docs/FORMS.md for the reference).
//!
//! Unknown keys are refused at every level, so a typo is an error and not a silently ignored
//! setting.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::messages::Localized;

/// A JSON Logic expression (show/require conditions, routing, computed fees).
pub type Condition = Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Assurance {
    /// Any signed-in resident.
    None,
    /// Signed in with the My Number Card (user-authentication certificate).
    CardAuth,
    /// Each application signed with the card's signature certificate.
    CardSign,
}

impl Assurance {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::CardAuth => "card-auth",
            Self::CardSign => "card-sign",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub id: String,
    pub version: u32,
    pub title: Localized,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Localized>,
    pub category: String,
    pub division: String,
    pub assurance: Assurance,
    pub processing_days: u32,
    #[serde(default)]
    pub national: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<Fee>,
    /// Whether and when the fee is paid online; absent = not online (paid as the fee note says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<Payment>,
    pub pages: Vec<Page>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing: Vec<RoutingRule>,
    #[serde(default)]
    pub notify: Notify,
    /// Certificates: who may request one online and where it is sent (the law's rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requesters: Option<Requesters>,
    /// Example submissions the test suite runs. Not served by the API.
    #[serde(default, skip_serializing)]
    pub examples: Vec<Example>,
}

impl Definition {
    /// Every file field, in page order, including those inside groups: what a resident must
    /// prepare to upload.
    pub fn file_fields(&self) -> Vec<&Field> {
        fn collect<'a>(fields: &'a [Field], into: &mut Vec<&'a Field>) {
            for field in fields {
                match field.kind() {
                    FieldType::File => into.push(field),
                    FieldType::Group => collect(&field.fields, into),
                    _ => {}
                }
            }
        }
        let mut files = Vec::new();
        for page in &self.pages {
            collect(&page.fields, &mut files);
        }
        files
    }
}

/// What a procedure costs. The amount is either one line written directly (`fixed`, `per_unit`
/// or `computed`, the line `fee`) or several named `lines`; `postage` and `exemptions` add
/// lines of their own to the breakdown (src/forms/fees.rs).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fee {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_unit: Option<PerUnitFee>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub computed: Option<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<FeeLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub postage: Vec<PostageLine>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemptions: Vec<Exemption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Localized>,
}

/// One named line of a fee; exactly one of `fixed`, `per_unit`, `computed`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeLine {
    pub id: String,
    pub label: Localized,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_unit: Option<PerUnitFee>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub computed: Option<Condition>,
}

/// Return postage at one of the rates of `catalog.yaml`, charged when `when` holds (always
/// when absent).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostageLine {
    pub rate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub when: Option<Condition>,
    /// Filled in from `catalog.yaml` when the catalog loads (never written in a form), so the
    /// rate is part of the definition's content hash and a submission pins the price it saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yen: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Localized>,
}

/// A fee exemption a resident may claim. A claimed exemption waives the fee lines (not the
/// postage) until a clerk confirms or refuses it against the evidence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    pub id: String,
    pub reason: Localized,
    /// The field holding the evidence (a document, a certificate number).
    pub evidence: String,
    /// Claimed when this holds on the answers.
    #[schema(value_type = serde_json::Value)]
    pub when: Condition,
}

/// Named `PaymentTerms` in the OpenAPI document: `Payment` there is a payment made
/// (`crate::payments::Payment`), and two schemas of one name would overwrite each other.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = PaymentTerms)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    pub timing: PaymentTiming,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentTiming {
    /// The fee follows from the answers; the application waits for payment before review.
    AtSubmit,
    /// Staff confirm the amount after review (事後決済), then ask the resident to pay.
    AfterReview,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerUnitFee {
    pub amount: u64,
    /// The integer field that counts the units.
    pub quantity: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Page {
    pub id: String,
    pub title: Localized,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub show_if: Option<Condition>,
    #[schema(no_recursion)]
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Textarea,
    Kana,
    Email,
    Phone,
    PostalCode,
    Address,
    Date,
    Integer,
    Decimal,
    Money,
    Select,
    Radio,
    MultiSelect,
    Boolean,
    Consent,
    File,
    Group,
    BankAccount,
    MyNumber,
    Info,
}

/// One field, or (before blocks are resolved) `include: <block>`.
///
/// Type-specific keys are optional here; the checker reports keys that do not apply to the type.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Name of a block in `forms/_blocks/` whose fields replace this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub field_type: Option<FieldType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<Localized>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<Localized>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub required_if: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub show_if: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// A regular expression the whole (normalised) value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// Numbers: a bound. Dates: `YYYY-MM-DD`, `today`, `today+N`, `today-N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub min: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub max: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept: Vec<FileKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(no_recursion)]
    pub fields: Vec<Field>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub account_types: Vec<AccountType>,
    /// `info` fields: the paragraph shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Localized>,
    /// `address` and `postal_code` fields: what a page fills in before the resident has
    /// answered (still editable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<Prefill>,
}

impl Field {
    /// The type, once blocks are resolved and the checker has passed. `info` for a malformed
    /// field, which carries no value.
    pub fn kind(&self) -> FieldType {
        self.field_type.unwrap_or(FieldType::Info)
    }

    /// File fields: the largest file accepted, in MB (10 unless the definition says).
    pub fn size_limit_mb(&self) -> u32 {
        self.max_size_mb.unwrap_or(10)
    }

    /// File fields: the kinds accepted; PDF, JPEG and PNG when none are listed (HEIC only when
    /// a definition asks for it).
    pub fn accepted_kinds(&self) -> Vec<FileKind> {
        if self.accept.is_empty() {
            vec![FileKind::Pdf, FileKind::Jpeg, FileKind::Png]
        } else {
            self.accept.clone()
        }
    }

    /// Bank account fields: the account types accepted; all of them when none are listed.
    pub fn allowed_account_types(&self) -> Vec<AccountType> {
        if self.account_types.is_empty() {
            vec![
                AccountType::Ordinary,
                AccountType::Current,
                AccountType::Savings,
            ]
        } else {
            self.account_types.clone()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    pub value: String,
    pub label: Localized,
}

/// Where a page's first value for a field comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Prefill {
    /// The city's own address and postal code (`[portal]` settings): for places that must be
    /// in the city (a collection point, where a dog is kept, a new address in the city).
    City,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Pdf,
    Jpeg,
    Png,
    Heic,
}

impl FileKind {
    /// The name residents know the kind by.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pdf => "PDF",
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::Heic => "HEIC",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Heic => "image/heic",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    /// 普通
    Ordinary,
    /// 当座
    Current,
    /// 貯蓄
    Savings,
}

/// Who may request a certificate online, and where it goes (docs/FORMS.md, *Who may request*).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requesters {
    pub who: Residency,
    pub send_to: SendTo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<RelationshipRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Residency {
    /// Only residents of the city (住民票: 住民基本台帳法 第12条): the signature certificate's
    /// address must be in the city.
    Residents,
    /// Residents, and anyone whose 本籍 is in the city (戸籍: 戸籍法 第10条); the 本籍 is not on
    /// the card, so staff check it.
    ResidentsAndHonseki,
    /// Residents, and former residents (住民票の除票: 住民基本台帳法 第15条の4; tax certificates of
    /// the city of residence on 1 January, 地方税法 第20条の10); a former residence is not on the
    /// card, so staff check it.
    ResidentsAndFormer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SendTo {
    /// The address in the resident record (required when the copy may show the My Number).
    RegisteredAddress,
    /// The address on the signature certificate.
    SignatureAddress,
}

/// The field in which the requester says who they are to the person on the certificate, and
/// the relationships that may request online.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationshipRule {
    pub field: String,
    pub allowed: Vec<Relationship>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    #[serde(rename = "self")]
    Person,
    Household,
    Spouse,
    LinealAscendant,
    LinealDescendant,
    ThirdParty,
}

impl Requesters {
    /// Whether a requester whose signature certificate shows `address` may apply online. Only
    /// residency is decided here; the 本籍 of a non-resident is checked by staff.
    pub fn admits(&self, city: Option<&City>, address: Option<&str>) -> bool {
        match self.who {
            Residency::ResidentsAndHonseki | Residency::ResidentsAndFormer => true,
            Residency::Residents => match (city, address) {
                (Some(city), Some(address)) => city.contains(address),
                _ => false,
            },
        }
    }
}

impl Relationship {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Person => "self",
            Self::Household => "household",
            Self::Spouse => "spouse",
            Self::LinealAscendant => "lineal_ascendant",
            Self::LinealDescendant => "lineal_descendant",
            Self::ThirdParty => "third_party",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    #[schema(value_type = serde_json::Value)]
    pub when: Condition,
    pub queue: String,
}

/// Events that notify someone by email.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    #[serde(default = "Notify::default_applicant")]
    pub applicant: Vec<String>,
    #[serde(default = "Notify::default_division")]
    pub division: Vec<String>,
}

impl Notify {
    fn default_applicant() -> Vec<String> {
        ["received", "returned", "completed", "rejected", "withdrawn"]
            .map(str::to_owned)
            .to_vec()
    }

    fn default_division() -> Vec<String> {
        vec!["received".to_owned()]
    }
}

impl Default for Notify {
    fn default() -> Self {
        Self {
            applicant: Self::default_applicant(),
            division: Self::default_division(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub name: String,
    pub data: Value,
    #[serde(default)]
    pub valid: bool,
    #[serde(default)]
    pub errors: Vec<ExpectedError>,
    #[serde(default)]
    pub fee: Option<u64>,
    /// The expected breakdown: yen by line id (fee lines, postage rates, exemptions) and `total`.
    #[serde(default)]
    pub breakdown: Option<BTreeMap<String, i64>>,
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub as_of: Option<chrono::NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedError {
    pub path: String,
    pub code: String,
}

/// `forms/catalog.yaml`: the city's categories, divisions and extra queues.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organisation {
    pub categories: BTreeMap<String, Localized>,
    pub divisions: BTreeMap<String, Division>,
    #[serde(default)]
    pub queues: BTreeMap<String, ExtraQueue>,
    /// Postage rates by id (Japan Post's tariff), in one place for every form.
    #[serde(default)]
    pub postage: BTreeMap<String, PostageRate>,
    /// The city itself, for rules about residents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<City>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostageRate {
    pub name: Localized,
    pub yen: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct City {
    pub name: Localized,
    /// How every address in the city starts (prefecture and city, e.g. 石川県加賀市): a
    /// signature certificate whose address starts otherwise belongs to a non-resident.
    pub address: String,
}

impl City {
    /// Whether an address (as on a signature certificate) is in the city. Compared after NFKC,
    /// without spaces, so full-width and half-width writings agree.
    pub fn contains(&self, address: &str) -> bool {
        let plain = |text: &str| -> String {
            use unicode_normalization::UnicodeNormalization;
            text.nfkc().filter(|c| !c.is_whitespace()).collect()
        };
        let prefix = plain(&self.address);
        !prefix.is_empty() && plain(address).starts_with(&prefix)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Division {
    pub name: Localized,
    /// Where division notices go.
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraQueue {
    pub division: String,
    pub name: Localized,
}

/// `forms/_blocks/<name>.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub fields: Vec<Field>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_city_recognises_its_addresses_however_they_are_written() {
        let city = City {
            name: Localized::new("加賀市", "Kaga City"),
            address: "石川県加賀市".to_owned(),
        };
        assert!(city.contains("石川県加賀市大聖寺南町ニ４１"));
        assert!(city.contains("石川県 加賀市大聖寺南町ニ41"));
        assert!(!city.contains("東京都千代田区丸の内１－１"));
        assert!(!city.contains("石川県金沢市鞍月1-1"));
        let residents = Requesters {
            who: Residency::Residents,
            send_to: SendTo::RegisteredAddress,
            relationship: None,
        };
        assert!(residents.admits(Some(&city), Some("石川県加賀市大聖寺南町ニ４１")));
        assert!(!residents.admits(Some(&city), Some("東京都千代田区丸の内１－１")));
        assert!(!residents.admits(None, Some("石川県加賀市大聖寺南町ニ４１")));
        assert!(!residents.admits(Some(&city), None));
        let honseki = Requesters {
            who: Residency::ResidentsAndHonseki,
            ..residents
        };
        assert!(honseki.admits(Some(&city), Some("東京都千代田区丸の内１－１")));
        let former = Requesters {
            who: Residency::ResidentsAndFormer,
            send_to: SendTo::SignatureAddress,
            relationship: None,
        };
        assert!(former.admits(Some(&city), Some("東京都千代田区丸の内１－１")));
    }
}
