//! Email templates in Japanese and English, text and HTML (minijinja, autoescaped HTML).

use std::sync::LazyLock;

use minijinja::{Environment, context};

use super::NoticeData;

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    // Templates are compiled into the binary; a template error is a bug caught by the tests.
    for (name, source) in [
        (
            "resident_status.ja.txt",
            include_str!("../../templates/email/resident_status.ja.txt"),
        ),
        (
            "resident_status.en.txt",
            include_str!("../../templates/email/resident_status.en.txt"),
        ),
        (
            "resident_status.ja.html",
            include_str!("../../templates/email/resident_status.ja.html"),
        ),
        (
            "resident_status.en.html",
            include_str!("../../templates/email/resident_status.en.html"),
        ),
        (
            "email_confirmation.ja.txt",
            include_str!("../../templates/email/email_confirmation.ja.txt"),
        ),
        (
            "email_confirmation.en.txt",
            include_str!("../../templates/email/email_confirmation.en.txt"),
        ),
        (
            "email_confirmation.ja.html",
            include_str!("../../templates/email/email_confirmation.ja.html"),
        ),
        (
            "email_confirmation.en.html",
            include_str!("../../templates/email/email_confirmation.en.html"),
        ),
        (
            "division_status.ja.txt",
            include_str!("../../templates/email/division_status.ja.txt"),
        ),
        (
            "division_status.ja.html",
            include_str!("../../templates/email/division_status.ja.html"),
        ),
        (
            "division_overdue.ja.txt",
            include_str!("../../templates/email/division_overdue.ja.txt"),
        ),
        (
            "division_overdue.ja.html",
            include_str!("../../templates/email/division_overdue.ja.html"),
        ),
        (
            "payment_confirmation.ja.txt",
            include_str!("../../templates/email/payment_confirmation.ja.txt"),
        ),
        (
            "payment_confirmation.en.txt",
            include_str!("../../templates/email/payment_confirmation.en.txt"),
        ),
        (
            "payment_confirmation.ja.html",
            include_str!("../../templates/email/payment_confirmation.ja.html"),
        ),
        (
            "payment_confirmation.en.html",
            include_str!("../../templates/email/payment_confirmation.en.html"),
        ),
        (
            "payment_request.ja.txt",
            include_str!("../../templates/email/payment_request.ja.txt"),
        ),
        (
            "payment_request.ja.html",
            include_str!("../../templates/email/payment_request.ja.html"),
        ),
        (
            "payment_request.en.txt",
            include_str!("../../templates/email/payment_request.en.txt"),
        ),
        (
            "payment_request.en.html",
            include_str!("../../templates/email/payment_request.en.html"),
        ),
        (
            "payment_expired.ja.txt",
            include_str!("../../templates/email/payment_expired.ja.txt"),
        ),
        (
            "payment_expired.ja.html",
            include_str!("../../templates/email/payment_expired.ja.html"),
        ),
        (
            "payment_expired.en.txt",
            include_str!("../../templates/email/payment_expired.en.txt"),
        ),
        (
            "payment_expired.en.html",
            include_str!("../../templates/email/payment_expired.en.html"),
        ),
    ] {
        let _ = environment.add_template(name, source);
    }
    environment
});

fn subject(template: &str, language: &str, data: &NoticeData) -> String {
    let ja = language != "en" || template.starts_with("division_");
    let event = match (data.event.as_str(), ja) {
        ("received", true) => "申請を受け付けました",
        ("received", false) => "We received your application",
        ("returned", true) => "申請内容の修正をお願いします",
        ("returned", false) => "Please correct your application",
        ("completed", true) => "申請の処理が完了しました",
        ("completed", false) => "Your application has been completed",
        ("rejected", true) => "申請は却下されました",
        ("rejected", false) => "Your application was rejected",
        ("withdrawn", true) => "申請が取り下げられました",
        ("withdrawn", false) => "Your application was withdrawn",
        ("resubmitted", true) => "修正された申請が届きました",
        (_, true) => "申請の状況が変わりました",
        (_, false) => "Your application's status changed",
    };
    if template == "payment_confirmation" {
        return if ja {
            format!("[madoguchi] 決済完了のお知らせ ({})", data.reference)
        } else {
            format!("[madoguchi] Payment confirmation ({})", data.reference)
        };
    }
    if template == "payment_request" {
        return if ja {
            format!("[madoguchi] お支払いのお願い ({})", data.reference)
        } else {
            format!("[madoguchi] Payment request ({})", data.reference)
        };
    }
    if template == "payment_expired" {
        return if ja {
            format!(
                "[madoguchi] お支払いの期限が過ぎました ({})",
                data.reference
            )
        } else {
            format!("[madoguchi] The time to pay is over ({})", data.reference)
        };
    }
    if template == "email_confirmation" {
        return if ja {
            "[madoguchi] メールアドレスの確認".to_owned()
        } else {
            "[madoguchi] Confirm your email address".to_owned()
        };
    }
    if template == "division_overdue" {
        format!(
            "[madoguchi] 処理期間を過ぎた申請が {} 件あります",
            data.status
        )
    } else if template == "division_status" {
        format!(
            "[madoguchi] 新着: {} ({})",
            data.procedure_title_ja, data.reference
        )
    } else {
        format!("[madoguchi] {event} ({})", data.reference)
    }
}

/// Yen with thousands separators, as on a receipt: 1,010.
fn yen(amount: i64) -> String {
    let digits = amount.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if amount < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

pub fn render(
    template: &str,
    language: &str,
    data: &NoticeData,
) -> Result<RenderedEmail, minijinja::Error> {
    let language = if template.starts_with("division_") || language != "en" {
        "ja"
    } else {
        "en"
    };
    let values = context! {
        event => data.event,
        reference => data.reference,
        title_ja => data.procedure_title_ja,
        title_en => data.procedure_title_en,
        status => data.status,
        link => data.link,
        lines => data.payment.as_ref().map(|paid| paid.lines.iter().map(|line| context! {
            ja => line.ja, en => line.en, yen => yen(line.yen),
        }).collect::<Vec<_>>()),
        total => data.payment.as_ref().map(|paid| yen(paid.total_yen)),
        provider_reference => data.payment.as_ref().map(|paid| paid.provider_reference.clone()),
    };
    let text = TEMPLATES
        .get_template(&format!("{template}.{language}.txt"))?
        .render(&values)?;
    let html = TEMPLATES
        .get_template(&format!("{template}.{language}.html"))?
        .render(&values)?;
    Ok(RenderedEmail {
        subject: subject(template, language, data),
        text,
        html,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_in_every_language_it_offers() {
        let data = NoticeData {
            event: "received".to_owned(),
            reference: "K7QM-4XTR-9BZP".to_owned(),
            procedure_title_ja: "住民票の写しの交付請求".to_owned(),
            procedure_title_en: "Resident record copy".to_owned(),
            status: "1".to_owned(),
            link: "https://madoguchi.example/x".to_owned(),
            payment: Some(super::super::PaidNotice {
                lines: vec![super::super::PaidLine {
                    ja: "手数料".to_owned(),
                    en: "Fee".to_owned(),
                    yen: 900,
                }],
                total_yen: 1010,
                provider_reference: "00000000000042".to_owned(),
            }),
        };
        for (template, language) in [
            ("resident_status", "ja"),
            ("resident_status", "en"),
            ("division_status", "ja"),
            ("division_overdue", "ja"),
            ("payment_request", "ja"),
            ("payment_request", "en"),
            ("payment_expired", "ja"),
            ("payment_expired", "en"),
        ] {
            // (email_confirmation carries no reference: checked below.)
            let email = render(template, language, &data)
                .unwrap_or_else(|error| panic!("{template}.{language}: {error}"));
            assert!(
                email.text.contains("K7QM-4XTR-9BZP"),
                "{template}.{language}"
            );
            assert!(
                email.html.contains("K7QM-4XTR-9BZP"),
                "{template}.{language}"
            );
        }
        for language in ["ja", "en"] {
            let email = render("email_confirmation", language, &data).unwrap();
            // (HTML escapes the slashes of the link; the browser reads it back.)
            assert!(email.text.contains(&data.link) && email.html.contains("madoguchi.example"));
            assert!(email.subject.contains("madoguchi"));
        }
        for language in ["ja", "en"] {
            let email = render("payment_confirmation", language, &data).unwrap();
            for text in [&email.text, &email.html] {
                assert!(text.contains("1,010") && text.contains("900"), "{text}");
                assert!(text.contains("00000000000042") && text.contains("領収証書"));
            }
        }
        assert_eq!(
            (yen(0), yen(110), yen(1010), yen(1234567)),
            ("0".into(), "110".into(), "1,010".into(), "1,234,567".into())
        );
    }
}
