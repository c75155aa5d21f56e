//! The page language: Japanese first; `?lang=` switches and a cookie keeps the choice.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use actix_web::HttpRequest;
use actix_web::http::header;

pub const COOKIE: &str = "lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Self::Ja => "ja",
            Self::En => "en",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::Ja => Self::En,
            Self::En => Self::Ja,
        }
    }

    fn parse(code: &str) -> Option<Self> {
        match code {
            "ja" => Some(Self::Ja),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The language asked for in the query string, if any (to be remembered in the cookie).
    pub fn from_query(query: &str) -> Option<Self> {
        query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("lang="))
            .find_map(Self::parse)
    }

    /// The query first, then the cookie, then Japanese.
    pub fn of(request: &HttpRequest) -> Self {
        Self::from_query(request.query_string())
            .or_else(|| {
                request
                    .headers()
                    .get_all(header::COOKIE)
                    .filter_map(|value| value.to_str().ok())
                    .flat_map(|value| value.split(';'))
                    .filter_map(|pair| pair.trim().strip_prefix("lang="))
                    .find_map(Self::parse)
            })
            .unwrap_or(Self::Ja)
    }

    /// One interface text ("" if there is none; the unit tests check every key used).
    pub fn text(self, key: &str) -> &'static str {
        self.texts().get(key).copied().unwrap_or_default()
    }

    /// The interface texts in this language, for templates as `t.<key>`.
    pub fn texts(self) -> &'static BTreeMap<&'static str, &'static str> {
        static JA: LazyLock<BTreeMap<&str, &str>> =
            LazyLock::new(|| TEXTS.iter().map(|(key, ja, _)| (*key, *ja)).collect());
        static EN: LazyLock<BTreeMap<&str, &str>> =
            LazyLock::new(|| TEXTS.iter().map(|(key, _, en)| (*key, *en)).collect());
        match self {
            Self::Ja => &JA,
            Self::En => &EN,
        }
    }
}

/// The current address with `lang` set to `lang` (other parameters kept as sent).
pub fn switch_href(path: &str, query: &str, lang: Lang) -> String {
    let mut pairs: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("lang="))
        .collect();
    let wanted = format!("lang={}", lang.code());
    pairs.push(&wanted);
    format!("{path}?{}", pairs.join("&"))
}

/// Interface texts: key, Japanese, English.
const TEXTS: &[(&str, &str, &str)] = &[
    ("site", "オンライン申請", "Online applications"),
    ("skip", "本文へ移動", "Skip to main content"),
    ("language", "言語", "Language"),
    ("other_language", "English", "日本語"),
    ("home", "ホーム", "Home"),
    ("accessibility", "アクセシビリティ", "Accessibility"),
    ("api_docs", "API（開発者向け）", "API (for developers)"),
    (
        "error_summary",
        "入力内容を確認してください",
        "There is a problem",
    ),
    ("home_title", "オンライン申請", "Apply online"),
    (
        "home_lead",
        "スマートフォンから市役所の手続きを申請できます。手続きを探してください。",
        "Apply to the city from your smartphone. Find your procedure.",
    ),
    ("search_label", "手続きを探す", "Find a procedure"),
    (
        "search_hint",
        "手続きの名前の一部を入力してください（ひらがな・カタカナ・漢字）。",
        "Type part of the procedure's name (Japanese or English).",
    ),
    ("search_button", "検索", "Search"),
    (
        "search_too_long",
        "検索語は100文字以内で入力してください。",
        "Enter a search of 100 characters or fewer.",
    ),
    ("categories", "分類から探す", "Browse by category"),
    ("all_procedures", "すべての手続き", "All procedures"),
    ("results_for", "検索結果", "Search results"),
    ("results_count", "件", "found"),
    (
        "no_results",
        "該当する手続きはありません。別の言葉で探してください。",
        "No procedure matches. Try other words.",
    ),
    ("needs", "必要なもの", "You need"),
    ("assurance_none", "ログインのみ", "Sign-in only"),
    (
        "assurance_card-auth",
        "マイナンバーカード",
        "My Number Card",
    ),
    (
        "assurance_card-sign",
        "マイナンバーカード（電子署名）",
        "My Number Card (signature)",
    ),
    ("fee", "手数料", "Fee"),
    ("free", "無料", "Free"),
    ("yen_before", "", "¥"),
    ("yen_after", "円", ""),
    ("per_unit", "（1件あたり）", " each"),
    (
        "fee_computed",
        "申請内容により異なります",
        "Depends on your answers",
    ),
    ("attachments", "添付書類", "Attachments"),
    ("no_attachments", "なし", "None"),
    ("attachments_unit", "点", ""),
    ("processing", "標準処理期間", "Standard processing period"),
    ("days_before", "", ""),
    ("days_after", "開庁日", " business days"),
    ("what_it_does", "この手続きについて", "About this procedure"),
    ("prepare", "準備するもの", "What to prepare"),
    (
        "prepare_none",
        "ログインできるアカウント（マイナンバーカードは不要です）",
        "An account to sign in with (no My Number Card needed)",
    ),
    (
        "prepare_card-auth",
        "マイナンバーカードと、利用者証明用電子証明書の暗証番号（数字4桁）",
        "Your My Number Card and its user authentication PIN (4 digits)",
    ),
    (
        "prepare_card-sign",
        "マイナンバーカードと、署名用電子証明書の暗証番号（英数字6〜16桁）",
        "Your My Number Card and its signature password (6 to 16 letters and digits)",
    ),
    ("file_types", "ファイル形式", "File types"),
    ("file_size", "1ファイルの上限", "Largest file"),
    ("file_count", "最大ファイル数", "Most files"),
    ("required", "必須", "Required"),
    ("optional", "任意", "Optional"),
    ("conditional", "該当する場合", "If it applies"),
    ("fee_note", "手数料について", "About the fee"),
    ("legal_basis", "根拠法令", "Legal basis"),
    ("assurance", "本人確認", "Identity check"),
    ("division", "担当課", "Division"),
    ("category", "分類", "Category"),
    ("start", "申請をはじめる", "Start the application"),
    ("sign_in_title", "ログイン", "Sign in"),
    (
        "sign_in_coming",
        "ポータルからのログインは準備中です。現在はアプリなどから申請できます。",
        "Signing in on these pages is coming soon. For now, apply through an app that uses the city's service.",
    ),
    (
        "back_to_procedure",
        "手続きの案内に戻る",
        "Back to the procedure",
    ),
    (
        "not_found_title",
        "ページが見つかりません",
        "Page not found",
    ),
    (
        "not_found_body",
        "お探しのページは見つかりませんでした。アドレスを確かめるか、ホームから手続きを探してください。",
        "We could not find this page. Check the address, or find your procedure from the home page.",
    ),
    (
        "unavailable_title",
        "ただいま混み合っています",
        "Sorry, the service is unavailable",
    ),
    (
        "unavailable_body",
        "一時的に処理できませんでした。入力した内容は失われていません。少し待ってからもう一度お試しください。",
        "We could not answer just now. Nothing you entered has been lost. Please wait a moment and try again.",
    ),
    ("retry", "もう一度試す", "Try again"),
    (
        "accessibility_title",
        "アクセシビリティ方針",
        "Accessibility statement",
    ),
    (
        "accessibility_target",
        "このサイトは、ウェブアクセシビリティの国際規格 WCAG 2.2 の適合レベル AA（JIS X 8341-3 の AA に相当）を目標としています。",
        "These pages aim to meet WCAG 2.2 (the Web Content Accessibility Guidelines) at level AA.",
    ),
    (
        "accessibility_how",
        "画面の幅が狭いスマートフォンでも使え、文字の拡大、キーボードだけでの操作、読み上げソフトに対応するよう作っています。JavaScript を使わなくてもすべての手続きができます。",
        "They work on narrow phone screens, with enlarged text, from the keyboard alone and with screen readers. Every procedure can be done without JavaScript.",
    ),
    (
        "accessibility_report_title",
        "問題を見つけたとき",
        "Reporting a problem",
    ),
    (
        "accessibility_report",
        "使いにくい点や読み上げられない箇所があれば、ページのアドレスと状況を添えて、各手続きの担当課または市役所の代表窓口までお知らせください。",
        "If something is hard to use or is not read out, tell the division in charge of the procedure or the city's main counter, with the page address and what happened.",
    ),
];
