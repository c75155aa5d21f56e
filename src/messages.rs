//! The service's message vocabulary, shared by the domain and both edges: texts in both
//! languages, field errors located by JSON pointer, and the standard message of each field
//! error code. It depends on nothing else of the crate, so every module may use it.

use serde::Serialize;
use utoipa::ToSchema;

/// A text in both languages of the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Localized {
    pub ja: String,
    pub en: String,
}

impl Localized {
    pub fn new(ja: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            ja: ja.into(),
            en: en.into(),
        }
    }
}

/// One problem with one input value, located by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON pointer into the request body, e.g. `/children/0/birth_date`.
    pub path: String,
    /// Stable machine code, e.g. `required`.
    pub code: String,
    pub message: Localized,
}

impl FieldError {
    /// An error with the standard ja/en message for `code`.
    pub fn new(path: &str, code: &str) -> Self {
        Self {
            path: path.to_owned(),
            code: code.to_owned(),
            message: message(code, None),
        }
    }
}

/// One JSON pointer reference token, escaped (RFC 6901).
pub fn escape(segment: &str) -> String {
    // Almost no key holds either character; one copy instead of two passes and two copies.
    if !segment.contains(['~', '/']) {
        return segment.to_owned();
    }
    segment.replace('~', "~0").replace('/', "~1")
}

/// The message for an error code, naming the field when we know its label.
pub fn message(code: &str, label: Option<&Localized>) -> Localized {
    let (ja_name, en_name) = label.map_or(("この項目", "This field"), |label| {
        (label.ja.as_str(), label.en.as_str())
    });
    let (ja, en) = match code {
        "required" => (
            format!("{ja_name}を入力してください。"),
            format!("{en_name} is required."),
        ),
        "unknown_field" => (
            "この項目はこの手続にありません。".to_owned(),
            "This is not a field of this procedure.".to_owned(),
        ),
        "invalid_type" => (
            format!("{ja_name}の形式が正しくありません。"),
            format!("{en_name} has the wrong type of value."),
        ),
        "too_short" => (
            format!("{ja_name}が短すぎます。"),
            format!("{en_name} is too short."),
        ),
        "too_long" => (
            format!("{ja_name}が長すぎます。"),
            format!("{en_name} is too long."),
        ),
        "invalid_character" => (
            format!("{ja_name}に使えない文字（制御文字など）が含まれています。"),
            format!(
                "{en_name} contains a character that cannot be accepted (a control character or similar)."
            ),
        ),
        "pattern_mismatch" => (
            format!("{ja_name}の書式が正しくありません。"),
            format!("{en_name} is not in the expected format."),
        ),
        "invalid_kana" => (
            format!("{ja_name}は全角カタカナで入力してください。"),
            format!("{en_name} must be written in katakana."),
        ),
        "invalid_email" => (
            format!("{ja_name}のメールアドレスが正しくありません。"),
            format!("{en_name} is not a valid email address."),
        ),
        "invalid_phone" => (
            format!("{ja_name}は0から始まる10桁または11桁の電話番号で入力してください。"),
            format!(
                "{en_name} must be a Japanese phone number of 10 or 11 digits starting with 0."
            ),
        ),
        "invalid_postal_code" => (
            format!("{ja_name}は7桁の数字で入力してください。"),
            format!("{en_name} must be 7 digits."),
        ),
        "invalid_date" => (
            format!("{ja_name}は正しい日付（例: 2026-04-01）で入力してください。"),
            format!("{en_name} must be a date such as 2026-04-01."),
        ),
        "date_too_early" => (
            format!("{ja_name}の日付が早すぎます。"),
            format!("{en_name} is too early."),
        ),
        "date_too_late" => (
            format!("{ja_name}の日付が遅すぎます。"),
            format!("{en_name} is too late."),
        ),
        "not_integer" => (
            format!("{ja_name}は整数で入力してください。"),
            format!("{en_name} must be a whole number."),
        ),
        "not_number" => (
            format!("{ja_name}は数値で入力してください。"),
            format!("{en_name} must be a number."),
        ),
        "too_small" => (
            format!("{ja_name}が小さすぎます。"),
            format!("{en_name} is too small."),
        ),
        "too_large" => (
            format!("{ja_name}が大きすぎます。"),
            format!("{en_name} is too large."),
        ),
        "invalid_option" => (
            format!("{ja_name}は選択肢から選んでください。"),
            format!("{en_name} must be one of the choices."),
        ),
        "duplicate_option" => (
            format!("{ja_name}で同じ選択肢が重複しています。"),
            format!("{en_name} lists a choice twice."),
        ),
        "too_few_items" => (
            format!("{ja_name}の数が足りません。"),
            format!("{en_name} needs more entries."),
        ),
        "too_many_items" => (
            format!("{ja_name}の数が多すぎます。"),
            format!("{en_name} has too many entries."),
        ),
        "must_consent" => (
            format!("{ja_name}に同意してください。"),
            format!("Please agree to {en_name}."),
        ),
        "invalid_my_number" => (
            "個人番号が正しくありません。12桁の番号をご確認ください。".to_owned(),
            "The Individual Number is not valid; check the 12 digits.".to_owned(),
        ),
        "invalid_bank_code" => (
            "金融機関コードは4桁の数字で入力してください。".to_owned(),
            "The bank code must be 4 digits.".to_owned(),
        ),
        "invalid_branch_code" => (
            "支店コードは3桁の数字で入力してください。".to_owned(),
            "The branch code must be 3 digits.".to_owned(),
        ),
        "invalid_account_number" => (
            "口座番号は7桁以内の数字で入力してください。".to_owned(),
            "The account number must be up to 7 digits.".to_owned(),
        ),
        "invalid_account_type" => (
            "この預金種別は指定できません。".to_owned(),
            "This account type cannot be used here.".to_owned(),
        ),
        "invalid_attachment" => (
            format!("{ja_name}の添付ファイルが見つかりません。"),
            format!("{en_name} refers to an attachment that does not exist."),
        ),
        _ => (
            format!("{ja_name}の内容が正しくありません。"),
            format!("{en_name} is not valid."),
        ),
    };
    Localized { ja, en }
}
