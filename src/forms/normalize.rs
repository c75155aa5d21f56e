//! Japanese input normalisation and the small checks that have no crate of their own.
//!
//! Residents type on phones with Japanese IMEs: full-width digits, half-width katakana, every
//! width of hyphen, spaces from the IME. We normalise first (Unicode NFKC, trimming, separator
//! removal), then validate the normalised value — so `０７６１ー７２ー１１１１` is a phone number.

use unicode_normalization::{IsNormalized, UnicodeNormalization};

/// NFKC and trimming: full-width ASCII to half-width, half-width katakana to full-width,
/// the ideographic space to a plain space.
pub fn text(value: &str) -> String {
    // Most answers are already in NFKC: the quick check is a table lookup per character, where
    // normalising decomposes and recomposes every one of them.
    if unicode_normalization::is_nfkc_quick(value.chars()) == IsNormalized::Yes {
        return value.trim().to_owned();
    }
    value.nfkc().collect::<String>().trim().to_owned()
}

/// Whether `value` is empty once normalised ([`text`]), without normalising it: NFKC turns no
/// character that is not whitespace into nothing but whitespace, nor whitespace into anything
/// else (a test holds this for every character), so trimming alone tells.
pub fn is_blank(value: &str) -> bool {
    value.trim().is_empty()
}

/// Characters people put between digits: hyphens and dashes of every width (including the
/// katakana prolonged sound mark that IMEs produce for "-"), spaces, brackets and the postal mark.
fn is_digit_separator(c: char) -> bool {
    matches!(
        c,
        '-' | '‐'
            | '‑'
            | '‒'
            | '–'
            | '—'
            | '―'
            | '−'
            | 'ー'
            | '－'
            | 'ｰ'
            | ' '
            | '('
            | ')'
            | '（'
            | '）'
            | '〒'
    )
}

/// NFKC, then drop separators. `"０７６１（７２）１１１１"` → `"0761721111"`.
pub fn digits(value: &str) -> String {
    text(value)
        .chars()
        .filter(|c| !is_digit_separator(*c))
        .collect()
}

fn all_ascii_digits(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())
}

/// A Japanese phone number: 10 or 11 digits starting with 0 (landline, mobile, IP, 0120).
pub fn is_phone(digits: &str) -> bool {
    all_ascii_digits(digits) && digits.starts_with('0') && matches!(digits.len(), 10 | 11)
}

pub fn is_postal_code(digits: &str) -> bool {
    all_ascii_digits(digits) && digits.len() == 7
}

/// Full-width katakana (after NFKC), the prolonged sound mark, the middle dot and spaces.
pub fn is_katakana(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー' | '・' | 'ヽ' | 'ヾ' | ' '))
}

/// A deliberately plain check: one `@`, something before it, a dotted domain after, no spaces.
/// The real proof of an address is the email we send to it.
pub fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !value.chars().any(char::is_whitespace)
        && value.len() <= 254
}

/// The check digit rule of the Individual Number (個人番号), from the ordinance of the
/// Ministry of Internal Affairs and Communications (総務省令第85号 第5条).
pub fn is_my_number(digits: &str) -> bool {
    if digits.len() != 12 || !all_ascii_digits(digits) {
        return false;
    }
    let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = (1..=11)
        .map(|n| {
            let p = values[11 - n];
            let q = if n <= 6 { n + 1 } else { n - 5 } as u32;
            p * q
        })
        .sum();
    let remainder = sum % 11;
    let check = if remainder <= 1 { 0 } else { 11 - remainder };
    values[11] == check
}

/// Parses a whole number written with full-width digits or thousands separators.
pub fn integer(value: &str) -> Option<i64> {
    let cleaned: String = text(value).chars().filter(|c| *c != ',').collect();
    cleaned.parse().ok()
}

pub fn decimal(value: &str) -> Option<f64> {
    let cleaned: String = text(value).chars().filter(|c| *c != ',').collect();
    cleaned
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_empty_once_normalised_for_every_character() {
        let mut buffer = [0u8; 4];
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let alone = c.encode_utf8(&mut buffer);
            assert_eq!(
                is_blank(alone),
                text(alone).is_empty(),
                "U+{:04X}",
                c as u32
            );
        }
        for mixed in ["\u{3000} \u{00A0}", " \u{00A8}", "\u{200B}", "\t\n"] {
            assert_eq!(is_blank(mixed), text(mixed).is_empty(), "{mixed:?}");
        }
    }

    #[test]
    fn text_skips_only_what_nfkc_would_leave_unchanged() {
        for value in [
            "  加賀市大聖寺南町ニ41 ",
            "ＡＢＣ０１２",
            "ｶﾀｶﾅ",
            "か\u{3099}",
            "\u{3000}山田\u{3000}太郎",
            "①㍻",
            "plain ascii",
        ] {
            let full = value.nfkc().collect::<String>().trim().to_owned();
            assert_eq!(text(value), full, "{value:?}");
        }
    }

    #[test]
    fn full_width_phone_numbers_and_postal_codes() {
        assert_eq!(digits("０７６１（７２）１１１１"), "0761721111");
        assert_eq!(digits("０９０ー１２３４ー５６７８"), "09012345678");
        assert!(is_phone(&digits("0761-72-1111")));
        assert!(!is_phone(&digits("761-72-1111")));
        assert_eq!(digits("〒 ９２２－８６２２"), "9228622");
        assert!(is_postal_code(&digits("922-8622")));
        assert!(!is_postal_code(&digits("92286")));
    }

    #[test]
    fn half_width_katakana_becomes_full_width() {
        assert_eq!(text("ｶｶﾞ ﾀﾛｳ"), "カガ タロウ");
        assert!(is_katakana(&text("ｶｶﾞ ﾀﾛｳ")));
        assert!(is_katakana(&text("スズキ　ジロー")));
        assert!(!is_katakana("かが たろう"));
        assert!(!is_katakana("KAGA"));
    }

    #[test]
    fn my_number_check_digit() {
        assert!(is_my_number("123456789018"));
        assert!(!is_my_number("123456789012"));
        assert!(!is_my_number("12345678901"));
    }

    #[test]
    fn numbers_with_full_width_digits_and_separators() {
        assert_eq!(integer("１，２００"), Some(1200));
        assert_eq!(integer("1.5"), None);
        assert_eq!(decimal("１.５"), Some(1.5));
    }

    #[test]
    fn email_shape() {
        assert!(is_email("taro@example.jp"));
        assert!(!is_email("taro@localhost"));
        assert!(!is_email("taro example@example.jp"));
    }
}
