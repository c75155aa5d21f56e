//! The written definition of every published measure, shown beside it on the pages and shipped
//! as the open data's definitions file.

use serde::Serialize;
use utoipa::ToSchema;

use crate::messages::Localized;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeasureDefinition {
    /// The field name in the JSON and the CSV's column key.
    pub key: &'static str,
    pub name: Localized,
    pub definition: Localized,
}

fn measure(key: &'static str, name: (&str, &str), definition: (&str, &str)) -> MeasureDefinition {
    MeasureDefinition {
        key,
        name: Localized::new(name.0, name.1),
        definition: Localized::new(definition.0, definition.1),
    }
}

/// What the breakdown table counts (`district` or `age_band`).
pub fn breakdown_definition(kind: &str) -> Localized {
    if kind == "district" {
        Localized::new(
            "その月に受け付けた申請の件数を、申請者の住所の町丁目別に数えたもの。町丁目は申請の時点でマイナンバーカードが示す住所から市の町丁目表により求め、住所そのものは集計に用いない。表にない住所や住所の情報がない申請は「不明」。市が町丁目別の集計を選んだ後に受け付けた申請のみを数える。",
            "Applications received in the month, counted by the district (町丁目) of the applicant's address. The district is found at submission from the address the My Number Card states, with the city's district table; the address itself is never used in the statistics. Addresses not in the table, or applications without one, count as unknown. Only applications received since the city chose this breakdown are counted.",
        )
    } else {
        Localized::new(
            "その月に受け付けた申請の件数を、申請日時点の申請者の年齢の10歳階級別に数えたもの。年齢はマイナンバーカードが示す生年月日から申請の時点で求め、生年月日そのものは集計に用いない。生年月日の情報がない申請は「不明」。市が年齢階級別の集計を選んだ後に受け付けた申請のみを数える。",
            "Applications received in the month, counted by the applicant's age in 10-year bands on the day they applied. The age is found at submission from the birth date the My Number Card states; the birth date itself is never used in the statistics. Applications without one count as unknown. Only applications received since the city chose this breakdown are counted.",
        )
    }
}

/// Every measure, in the order of the CSV's columns.
pub fn measures() -> Vec<MeasureDefinition> {
    vec![
        measure(
            "received",
            ("受付件数", "Applications received"),
            (
                "その月（日本時間）にオンラインで受け付けた申請の件数。送信時に手数料の支払が必要な手続は、支払が済んだ時点で受付とする。",
                "Applications received online in the month (Japan time). Where the fee is due at submission, an application is received when it is paid.",
            ),
        ),
        measure(
            "received_per_day",
            ("1日平均受付件数", "Received per day"),
            (
                "受付件数をその月の暦日数（当月は今日までの日数）で割った値。",
                "Applications received divided by the calendar days of the month (for the current month, the days so far).",
            ),
        ),
        measure(
            "cumulative",
            ("累計受付件数", "Cumulative received"),
            (
                "表示期間の初月からその月までの受付件数の合計。途中の月が秘匿されている場合は表示しない。",
                "Applications received from the first month shown up to this month. Not shown after a month that is hidden.",
            ),
        ),
        measure(
            "card_signed_share",
            ("電子署名の割合", "Signed with the card"),
            (
                "受付件数のうち、マイナンバーカードの署名用電子証明書で署名された申請の割合（%）。",
                "Share (%) of applications received that were signed with the My Number Card's signature certificate.",
            ),
        ),
        measure(
            "online_share",
            ("オンライン利用率", "Online share"),
            (
                "オンライン受付件数 ÷（オンライン受付件数 ＋ 窓口受付件数）（%）。窓口受付件数は担当課の職員が毎月手続ごとに入力したもの。入力のない月は表示しない。",
                "Online ÷ (online + counter) applications (%). Counter counts are entered monthly per procedure by the division's staff; months without them are not shown.",
            ),
        ),
        measure(
            "decided",
            ("処理件数", "Decided"),
            (
                "その月に処理完了または却下とした申請の件数。",
                "Applications completed or rejected in the month.",
            ),
        ),
        measure(
            "median_days",
            ("処理日数の中央値", "Median processing days"),
            (
                "その月に処理した申請について、受付から処理までの開庁日数（受付日を含まず、差し戻し中の日数を除く）の中央値（percentile_disc 0.5）。",
                "Median (percentile_disc 0.5) of business days from receipt to decision (the day of receipt not counted, days returned to the resident excluded), over applications decided in the month.",
            ),
        ),
        measure(
            "p90_days",
            (
                "処理日数の90パーセンタイル",
                "90th percentile processing days",
            ),
            (
                "同じ処理日数の90パーセンタイル（percentile_disc 0.9）。250開庁日以上は250として数える。",
                "The 90th percentile (percentile_disc 0.9) of the same processing days; 250 business days or more count as 250.",
            ),
        ),
        measure(
            "within_standard_share",
            ("標準処理期間内の割合", "Within the standard period"),
            (
                "標準処理期間が定められた手続で、その月に処理した申請のうち、処理日数が標準処理期間以内だったものの割合（%）。",
                "Of applications decided in the month for procedures with a standard processing period, the share (%) decided within it.",
            ),
        ),
        measure(
            "return_rate",
            ("差し戻し率", "Return rate"),
            (
                "その月の差し戻しの回数 ÷ その月の受付件数（%）。",
                "Returns for correction in the month ÷ applications received in the month (%).",
            ),
        ),
        measure(
            "withdrawal_rate",
            ("取下げ率", "Withdrawal rate"),
            (
                "その月の取下げ件数 ÷ その月の受付件数（%）。",
                "Withdrawals in the month ÷ applications received in the month (%).",
            ),
        ),
        measure(
            "rejection_rate",
            ("却下率", "Rejection rate"),
            (
                "その月に却下した件数 ÷ その月の処理件数（%）。",
                "Rejections in the month ÷ applications decided in the month (%).",
            ),
        ),
        measure(
            "overdue_at_end",
            (
                "期限超過の未処理件数（月末）",
                "Open and overdue at month end",
            ),
            (
                "その月の最後の集計日の終わりに、処理期限を過ぎてなお市が処理中（差し戻し中を除く）だった申請の件数。",
                "Applications still with the city (not returned to the resident) past their due date at the end of the month's last recorded day.",
            ),
        ),
        measure(
            "paid",
            ("オンライン納付件数", "Paid online"),
            (
                "その月（日本時間）に決済事業者が支払完了を確定した手数料の支払の件数。",
                "Fee payments the payment provider confirmed as paid in the month (Japan time).",
            ),
        ),
        measure(
            "paid_yen",
            ("オンライン納付額（円）", "Paid online (yen)"),
            (
                "同じ支払の金額の合計（円）。件数が秘匿される欄は金額も秘匿する。",
                "The total of the same payments, in yen. Hidden wherever their count is.",
            ),
        ),
        measure(
            "refunded",
            ("返金件数", "Refunds"),
            (
                "その月に決済事業者が完了した返金の件数（一部返金を含む）。",
                "Refunds the payment provider completed in the month (partial refunds included).",
            ),
        ),
        measure(
            "refunded_yen",
            ("返金額（円）", "Refunded (yen)"),
            (
                "同じ返金の金額の合計（円）。件数が秘匿される欄は金額も秘匿する。",
                "The total of the same refunds, in yen. Hidden wherever their count is.",
            ),
        ),
        measure(
            "late_successes",
            ("遅延した支払完了の件数", "Late payment successes"),
            (
                "失敗または期限切れと記録した後に、決済事業者から支払完了の通知があった支払の件数（職員の確認が必要なもの）。支払完了の確定した月に数える。",
                "Payments the provider reported as paid after madoguchi had recorded them as failed or expired (they need staff attention), counted in the month they were confirmed.",
            ),
        ),
    ]
}

/// The note every output carries about hidden values.
pub fn suppression_note(minimum: i64) -> Localized {
    Localized::new(
        format!(
            "個人が特定されないよう、{minimum}件未満の値と、合計から逆算できてしまう値は「X」として秘匿しています。利用の少ない手続は分類ごとの「その他」にまとめています。"
        ),
        format!(
            "So that no one can be singled out, counts under {minimum} and any value that would let one be worked out from the totals are hidden (X). Rarely used procedures are grouped as \"other\" within their category."
        ),
    )
}
