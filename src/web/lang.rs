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
            LazyLock::new(|| all_texts().map(|(key, ja, _)| (*key, *ja)).collect());
        static EN: LazyLock<BTreeMap<&str, &str>> =
            LazyLock::new(|| all_texts().map(|(key, _, en)| (*key, *en)).collect());
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

/// Every interface text: the shared ones here, and those of the pages after applying.
fn all_texts() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    TEXTS
        .iter()
        .chain(super::applications::TEXTS)
        .chain(super::payments::TEXTS)
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
    ("yes", "はい", "Yes"),
    ("no", "いいえ", "No"),
    (
        "applies_if",
        "前の質問の答えによっては答える必要はありません。該当する場合に答えてください。",
        "You may not need to answer this, depending on your earlier answers. Answer it if it applies to you.",
    ),
    (
        "holder_differs",
        "口座名義（カナ）が申請者のフリガナと異なります。申請者本人の口座でよいか確認してください。",
        "The account holder's name differs from the applicant's. Check that this is the applicant's own account.",
    ),
    ("account_ordinary", "普通", "Ordinary"),
    ("account_current", "当座", "Current"),
    ("account_savings", "貯蓄", "Savings"),
    ("list_separator", "、", ", "),
    ("consented", "同意しました", "Agreed"),
    ("files_unit", "件", " file(s)"),
    ("bank_code", "金融機関コード（4桁）", "Bank code (4 digits)"),
    ("branch_code", "支店コード（3桁）", "Branch code (3 digits)"),
    ("account_type", "預金種別", "Account type"),
    (
        "account_number",
        "口座番号（7桁）",
        "Account number (7 digits)",
    ),
    (
        "holder_kana",
        "口座名義（カタカナ）",
        "Account holder (katakana)",
    ),
    ("postal_code", "郵便番号（7桁）", "Postal code (7 digits)"),
    ("address_line", "住所", "Address"),
    ("building", "建物名・部屋番号", "Building and room"),
    ("year", "年", "Year"),
    ("month", "月", "Month"),
    ("day", "日", "Day"),
    ("wareki", "和暦", "Japanese era"),
    ("choose", "選択してください", "Choose one"),
    (
        "my_number_hint",
        "12桁の個人番号です。安全のため、保存した番号は下4桁だけを表示します。",
        "Your 12-digit individual number. For your safety, a saved number shows only its last 4 digits.",
    ),
    (
        "uploaded_file",
        "アップロード済みのファイル",
        "Uploaded file",
    ),
    ("remove_file", "削除する", "remove"),
    ("add_member", "追加する", "Add"),
    ("remove_member", "削除する", "Remove"),
    ("next", "次へ", "Continue"),
    ("step", "ステップ", "Step"),
    ("error_prefix", "エラー: ", "Error: "),
    (
        "vouched_source",
        "マイナンバーカードで確認済み",
        "confirmed with your My Number Card",
    ),
    (
        "needs_card",
        "の申請には、マイナンバーカードでのログインが必要です。ログアウトしてから、マイナンバーカードでログインし直してください。",
        "needs a sign-in with the My Number Card. Sign out, then sign in again with your card.",
    ),
    (
        "continue_draft",
        "保存した下書きから続ける",
        "Carry on with a saved draft",
    ),
    ("saved_at", "保存", "Saved"),
    ("kept_until", "保存期限", "Kept until"),
    (
        "start_lead",
        "入力内容は「次へ」を押すたびに下書きとして保存されます。別の端末からでも続きを入力できます。",
        "Your answers are saved as a draft every time you press Continue, so you can carry on from another device.",
    ),
    (
        "start_new",
        "新しく申請をはじめる",
        "Start a new application",
    ),
    (
        "drafts_lead",
        "申請の途中で保存された下書きです。一定期間が過ぎると削除されます。",
        "Applications you started and have not sent yet. They are deleted after a while.",
    ),
    (
        "no_drafts",
        "保存した下書きはありません。",
        "You have no saved drafts.",
    ),
    ("confirm_title", "申請内容の確認", "Check your answers"),
    (
        "confirm_lead",
        "内容を確認して、よければ「申請する」を押してください。直すときは「変更」を押してください。",
        "Check your answers. If they are right, press Send. To correct one, press Change.",
    ),
    ("change", "変更", "Change"),
    (
        "missing_title",
        "まだ申請できません",
        "You cannot send this yet",
    ),
    (
        "fee_after_check",
        "すべて答えると表示されます",
        "Shown once every answer is complete",
    ),
    (
        "card_sign_note",
        "この手続きは、マイナンバーカードの署名用電子証明書で署名して送信します。このページからの署名は準備中のため、下書きは保存したまま、マイナンバーカードに対応したアプリから送信してください。",
        "This application is sent signed with your My Number Card's signature certificate. Signing on these pages is not available yet: your draft is kept, and you can send it from an app that supports the card.",
    ),
    (
        "card_sign_correction_note",
        "この手続きの訂正は、マイナンバーカードの署名用電子証明書で署名して送信します。このページからは署名できないため、マイナンバーカードに対応したアプリから訂正してください。",
        "A correction to this application is sent signed with your My Number Card's signature certificate. Signing on these pages is not available: correct it from an app that supports the card.",
    ),
    (
        "card_sign_lead",
        "この手続きは、マイナンバーカードの署名用電子証明書で署名して送信します。次の画面で署名する内容を確認してください。",
        "This application is signed with your My Number Card's signature certificate. Check what you sign on the next page.",
    ),
    ("to_signing", "署名へ進む", "Go on to sign"),
    ("sign_title", "署名して申請する", "Sign and send"),
    (
        "sign_lead",
        "次の内容に、マイナンバーカードの署名用電子証明書で署名します。署名した内容は変更できません。",
        "You are about to sign the following with your My Number Card's signature certificate. What you sign cannot be changed.",
    ),
    ("sign_payload", "署名する内容", "What you sign"),
    (
        "sign_payload_hint",
        "申請の内容、手続きの版、あなたのアカウントと、この署名だけに使う番号です。個人番号は、この画面では下4桁だけを表示しています。",
        "Your answers, the version of the form, your account, and a number used for this signature only. On this page your individual number shows only its last 4 digits.",
    ),
    ("sign_and_send", "署名して申請する", "Sign and send"),
    ("send", "申請する", "Send"),
    (
        "received_title",
        "申請を受け付けました",
        "Application received",
    ),
    ("reference", "受付番号", "Reference number"),
    ("what_next", "このあとの流れ", "What happens next"),
    (
        "what_next_body",
        "担当課が内容を確認します。確認の結果や、修正をお願いするときは、登録したメールアドレスにお知らせします。",
        "The division in charge will check your application. We will email you (at the address you confirmed) when there is news or if something needs correcting.",
    ),
    (
        "what_next_after_payment",
        "お支払いが確認できると、申請が担当課に届き、内容の確認が始まります。期限までにお支払いがないときは、この申請は期限切れとなり、メールでお知らせします。",
        "Once your payment is confirmed, the application reaches the division in charge and they check it. If it is not paid in time, it expires and we email you.",
    ),
    ("due_date", "処理の予定日", "Expected by"),
    (
        "keep_reference",
        "お問い合わせの際は受付番号をお伝えください。",
        "Quote the reference number if you contact us.",
    ),
    ("back", "戻る", "Back"),
    (
        "sign_in_none",
        "現在このサイトで使えるログイン方法はありません。",
        "No way to sign in is offered on these pages at the moment.",
    ),
    (
        "sign_in_oidc_lead",
        "デジタル認証アプリとマイナンバーカードでログインします。",
        "Sign in with the Digital Authentication App and your My Number Card.",
    ),
    (
        "sign_in_oidc",
        "デジタル認証アプリでログイン",
        "Sign in with the Digital Authentication App",
    ),
    (
        "sign_in_dev_title",
        "開発用のカードでログイン",
        "Sign in with the development card",
    ),
    ("sign_in_dev_label", "カード保持者ID", "Card holder id"),
    (
        "sign_in_dev_hint",
        "開発・試験用です。任意の英数字を入力してください（64文字以内）。",
        "For development and testing only. Enter any letters and digits (64 or fewer).",
    ),
    ("sign_in_dev", "ログイン", "Sign in"),
    (
        "sign_in_dev_invalid",
        "カード保持者IDを64文字以内で入力してください。",
        "Enter a card holder id of 64 characters or fewer.",
    ),
    ("account_nav", "アカウント", "Account"),
    ("drafts_title", "保存した下書き", "Saved drafts"),
    ("sign_out", "ログアウト", "Sign out"),
    (
        "forbidden_title",
        "この操作は受け付けられませんでした",
        "This request was refused",
    ),
    (
        "forbidden_body",
        "安全のため、このページから送られたことを確認できない操作は受け付けていません。前のページを開き直してから、もう一度操作してください。",
        "For your safety, we only accept actions sent from our own pages. Reload the previous page and try again.",
    ),
    (
        "refused_title",
        "手続きを進められません",
        "We cannot continue",
    ),
    (
        "internal_error",
        "申し訳ありません。問題が発生しました。入力した内容は保存されている場合があります。しばらくしてからもう一度お試しください。",
        "Sorry, something went wrong. What you entered may have been saved. Please try again later.",
    ),
    (
        "expired_title",
        "ログインの有効期限が切れました",
        "Your session has expired",
    ),
    (
        "expired_body",
        "安全のため、ログインの有効期限が切れました。「次へ」を押したところまでの入力内容は下書きとして保存されています。もう一度ログインすると、続きから入力できます。",
        "For your safety, your session has ended. Everything up to your last 「次へ」 (Continue) is saved as a draft. Sign in again to carry on where you left off.",
    ),
    ("sign_in_again", "もう一度ログインする", "Sign in again"),
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
