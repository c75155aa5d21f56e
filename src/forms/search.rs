//! Finding procedures by words, for both edges (the JSON catalog and the portal).
//!
//! Residents type what their IME gives them: full-width letters, half-width katakana, or hiragana
//! for a word the title writes in katakana (「まいなんばー」 for マイナンバー). Both the words and
//! the titles are folded the same way (NFKC, lower case, hiragana to katakana) before comparing.

use super::model::Definition;
use super::normalize;

/// The words of a search, folded. Every word must appear in the procedure's id or title.
#[derive(Debug, Clone, Default)]
pub struct Search {
    words: Vec<String>,
}

impl Search {
    pub fn new(query: &str) -> Self {
        Self {
            words: fold(query).split_whitespace().map(str::to_owned).collect(),
        }
    }

    /// No words: everything matches.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn matches(&self, definition: &Definition) -> bool {
        if self.words.is_empty() {
            return true;
        }
        let haystack = fold(&format!(
            "{} {} {}",
            definition.id, definition.title.ja, definition.title.en
        ));
        self.words.iter().all(|word| haystack.contains(word))
    }
}

/// NFKC (full-width ASCII and half-width katakana to their usual forms), lower case, and
/// hiragana to katakana.
fn fold(text: &str) -> String {
    normalize::text(text)
        .to_lowercase()
        .chars()
        .map(|c| match c {
            // ぁ..ゖ and the iteration marks ゝゞ sit exactly 0x60 below their katakana.
            '\u{3041}'..='\u{3096}' | '\u{309D}' | '\u{309E}' => {
                char::from_u32(c as u32 + 0x60).unwrap_or(c)
            }
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hiragana_finds_katakana_and_widths_fold() {
        assert_eq!(fold("まいなんばー"), "マイナンバー");
        assert_eq!(fold("ﾏｲﾅﾝﾊﾞｰ"), "マイナンバー");
        assert_eq!(fold("ＲＥＳＩＤＥＮＴ"), "resident");
        assert_eq!(fold("住民票"), "住民票");
    }
}
