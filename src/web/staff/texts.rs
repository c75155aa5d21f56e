//! The console's interface texts in Japanese and English, for templates as `s.<key>` (the
//! portal's own are `t.<key>`, in `web::lang`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::super::lang::Lang;

pub fn of(lang: Lang) -> &'static BTreeMap<&'static str, &'static str> {
    static JA: LazyLock<BTreeMap<&str, &str>> =
        LazyLock::new(|| TEXTS.iter().map(|(key, ja, _)| (*key, *ja)).collect());
    static EN: LazyLock<BTreeMap<&str, &str>> =
        LazyLock::new(|| TEXTS.iter().map(|(key, _, en)| (*key, *en)).collect());
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

/// One text ("" if there is none; the unit test checks the keys the code uses).
pub fn text(lang: Lang, key: &str) -> &'static str {
    of(lang).get(key).copied().unwrap_or_default()
}

const TEXTS: &[(&str, &str, &str)] = &[
    ("console", "職員用 窓口", "Staff console"),
    ("nav", "職員メニュー", "Staff menu"),
    ("dashboard", "担当キュー", "My queues"),
    (
        "failed_emails",
        "送信できなかったメール",
        "Undelivered emails",
    ),
    ("sign_out", "ログアウト", "Sign out"),
    ("sign_in_title", "職員ログイン", "Staff sign-in"),
    ("login", "ログインID", "Login"),
    ("password", "パスワード", "Password"),
    ("sign_in", "ログイン", "Sign in"),
    (
        "sign_in_oidc",
        "庁内の認証基盤でログイン",
        "Sign in with the city's sign-in service",
    ),
    (
        "bad_credentials",
        "ログインIDまたはパスワードが違います。",
        "The login or password is wrong.",
    ),
    (
        "too_many_attempts",
        "ログインの試行が多すぎます。しばらくしてからお試しください。",
        "Too many sign-in attempts; please wait a minute.",
    ),
    (
        "login_required",
        "ログインIDを入力してください。",
        "Enter your login.",
    ),
    (
        "password_required",
        "パスワードを入力してください。",
        "Enter your password.",
    ),
    (
        "oidc_failed",
        "ログインを完了できませんでした。もう一度ログインしてください。",
        "The sign-in could not be completed. Please sign in again.",
    ),
    ("password_title", "パスワードの変更", "Change your password"),
    (
        "password_lead",
        "管理者が設定したパスワードは、最初に変更する必要があります。変更すると、ほかの端末のログインは終了します。",
        "The password an admin gave you must be changed first. Changing it signs you out everywhere else.",
    ),
    ("current_password", "現在のパスワード", "Current password"),
    ("new_password", "新しいパスワード", "New password"),
    (
        "new_password_hint",
        "12文字以上で入力してください。",
        "At least 12 characters.",
    ),
    ("change_password", "変更する", "Change password"),
    (
        "current_password_wrong",
        "現在のパスワードが違います。",
        "The current password is wrong.",
    ),
    (
        "new_password_short",
        "新しいパスワードは12文字以上にしてください。",
        "The new password needs at least 12 characters.",
    ),
    ("queue", "キュー", "Queue"),
    ("division", "課", "Division"),
    ("new", "新着", "New"),
    ("in_progress", "処理中", "In progress"),
    ("returned", "差し戻し中", "Returned"),
    ("overdue", "期限超過", "Overdue"),
    ("due_soon", "期限間近", "Due soon"),
    (
        "no_queues",
        "担当するキューがありません。",
        "You have no queues.",
    ),
    ("filters", "絞り込み", "Filters"),
    ("status", "状態", "Status"),
    ("any", "すべて", "Any"),
    ("procedure", "手続き", "Procedure"),
    ("assignee", "担当者", "Assignee"),
    ("assignee_me", "自分", "Me"),
    ("assignee_none", "未割当", "Nobody"),
    ("only_overdue", "期限超過のみ", "Overdue only"),
    ("submitted_from", "受付日（から）", "Submitted from"),
    ("submitted_to", "受付日（まで）", "Submitted to"),
    ("apply_filters", "絞り込む", "Apply filters"),
    ("clear_filters", "条件をクリア", "Clear filters"),
    ("saved_filters", "保存した条件", "Saved filters"),
    (
        "no_saved_filters",
        "保存した条件はまだありません。",
        "No saved filters yet.",
    ),
    (
        "save_filter_name",
        "いまの条件に名前をつけて保存",
        "Save these filters as",
    ),
    ("save_filter", "条件を保存する", "Save filters"),
    ("saved_filter_name_of", "名前：", "Name of"),
    ("rename", "名前を変える", "Rename"),
    ("delete", "削除する", "Delete"),
    ("claim_next", "次を担当する", "Take the next one"),
    (
        "nothing_to_claim",
        "担当できる新着の申請はありません。",
        "There is nothing new to take.",
    ),
    ("reference", "受付番号", "Reference"),
    ("submitted_at", "受付日時", "Submitted"),
    ("due_date", "処理期限", "Due"),
    ("paused", "停止中（差し戻し中）", "Paused (returned)"),
    ("no_due_date", "期限なし", "No due date"),
    ("unassigned", "未割当", "Unassigned"),
    (
        "no_items",
        "該当する申請はありません。",
        "No applications match.",
    ),
    ("next_page", "次のページ", "Next page"),
    ("first_page", "最初のページ", "First page"),
    ("select", "選択", "Select"),
    (
        "bulk_title",
        "選択した申請をまとめて",
        "With the selected applications",
    ),
    ("bulk_assign_to", "割り当てる職員", "Assign to"),
    ("bulk_reason", "理由", "Reason"),
    (
        "bulk_reason_hint",
        "内部メモとして各申請に記録されます。",
        "Recorded on each application as an internal note.",
    ),
    ("bulk_assign", "割り当てる", "Assign"),
    ("bulk_release", "キューに戻す", "Release to the queue"),
    (
        "bulk_none_selected",
        "申請を1件以上選択してください。",
        "Select at least one application.",
    ),
    (
        "bulk_reason_required",
        "理由を入力してください。",
        "Give a reason.",
    ),
    (
        "bulk_assignee_required",
        "割り当てる職員を選んでください。",
        "Choose whom to assign to.",
    ),
    (
        "bulk_done",
        "件の申請を処理しました。",
        "applications were changed.",
    ),
    ("bulk_note_assign", "一括割当", "Assigned in bulk"),
    (
        "bulk_note_release",
        "一括でキューに戻した",
        "Released in bulk",
    ),
    ("answers", "申請内容", "Answers"),
    (
        "card_facts",
        "カードで確認された基本4情報",
        "Basic facts verified by the card",
    ),
    ("card_value", "カードの記載", "On the card"),
    ("answer", "回答", "Answer"),
    ("mismatch", "不一致", "Differs"),
    ("field", "項目", "Field"),
    (
        "comment_on_field",
        "この項目へのコメント",
        "Comment on this field",
    ),
    (
        "no_card_facts",
        "この手続きはカードの確認を求めていません。",
        "This procedure does not ask for a card check.",
    ),
    ("fee", "手数料", "Fee"),
    ("yen", "円", "yen"),
    ("no_fee", "なし", "None"),
    ("payment", "手数料とお支払い", "Fee and payment"),
    ("payments", "お支払い", "Payments"),
    (
        "no_payments",
        "お支払いはまだありません。",
        "No payment yet.",
    ),
    ("payment_order", "注文番号", "Order"),
    ("payment_state", "状態", "State"),
    ("payment_amount", "金額", "Amount"),
    (
        "payment_reference",
        "決済事業者の番号",
        "Provider's reference",
    ),
    ("payment_settled_at", "確定日時", "Settled"),
    (
        "payment_created",
        "作成済み（決済前）",
        "Created (not yet at the provider)",
    ),
    ("payment_pending", "決済待ち", "Pending"),
    ("payment_succeeded", "支払済み", "Paid"),
    ("payment_failed", "失敗", "Failed"),
    ("payment_expired", "期限切れ", "Expired"),
    ("payment_cancelled", "取消し", "Cancelled"),
    (
        "payment_attention_late_success",
        "要確認：失敗の記録の後に入金",
        "Needs a person: paid after a recorded failure",
    ),
    (
        "payment_attention_refund_due",
        "要確認：返金が必要",
        "Needs a person: a refund is due",
    ),
    ("attachments", "添付ファイル", "Attachments"),
    (
        "no_attachments",
        "添付ファイルはありません。",
        "No attachments.",
    ),
    ("download", "ダウンロード", "Download"),
    ("preview", "表示", "View"),
    ("history", "経過", "History"),
    ("by_resident", "申請者", "The resident"),
    ("by_system", "システム", "The system"),
    ("notes", "内部メモ", "Internal notes"),
    ("no_notes", "メモはありません。", "No notes."),
    ("add_note", "メモを追加", "Add a note"),
    (
        "note",
        "メモ（申請者には表示されません）",
        "Note (never shown to the resident)",
    ),
    ("revisions", "版", "Revisions"),
    ("revision", "第{n}版", "Revision {n}"),
    (
        "see_diff",
        "前の版との違い",
        "Changes from the previous revision",
    ),
    ("decide", "処理", "Decide"),
    ("start", "処理を開始する", "Start processing"),
    ("complete", "処理完了にする", "Complete"),
    ("release", "キューに戻す", "Release to the queue"),
    ("return", "差し戻す", "Return for correction"),
    (
        "return_reason",
        "差し戻しの理由（申請者に表示されます）",
        "Why it is returned (shown to the resident)",
    ),
    (
        "return_hint",
        "項目ごとのコメントは、申請内容の各項目の「この項目へのコメント」に入力してください。",
        "Comments on single fields go in each answer's “Comment on this field”.",
    ),
    ("reject", "却下する", "Reject"),
    (
        "fee_request",
        "手数料等を確定して支払を依頼する（事後決済）",
        "Set the fees and ask for payment (paid after review)",
    ),
    (
        "fee_request_hint",
        "金額を確定すると、申請は支払待ちになり、申請者にお支払いのお願いがメールで届きます。支払が確認されると、この申請は処理中に戻ります。",
        "Once set, the application waits for payment and the resident is emailed a payment request; when the payment is confirmed it comes back in progress.",
    ),
    (
        "fee_reason",
        "金額の理由（履歴に残ります）",
        "Why this amount (kept in the history)",
    ),
    (
        "fee_send",
        "金額を確定して支払を依頼する",
        "Set and ask for payment",
    ),
    (
        "reject_reason",
        "却下の理由（申請者に表示されます）",
        "Why it is rejected (shown to the resident)",
    ),
    (
        "not_yours",
        "この申請は他の職員が担当しています。",
        "Someone else has this application.",
    ),
    ("reveal", "マイナンバーを表示", "Reveal the My Number"),
    ("reveal_reason", "表示する理由", "Why you need it"),
    (
        "reveal_notice",
        "表示したこととその理由は、申請者が「閲覧記録」で確認できます。",
        "The resident will see that you revealed it, and why, in their access log.",
    ),
    ("revealed_title", "マイナンバー", "My Number"),
    (
        "revealed_lead",
        "この表示は記録されました。必要な作業が終わったら、このページを閉じてください。",
        "This reveal was recorded. Close this page when you are done.",
    ),
    (
        "back_to_application",
        "申請に戻る",
        "Back to the application",
    ),
    ("done", "処理しました。", "Done."),
    (
        "diff_title",
        "前の版との違い",
        "Changes from the previous revision",
    ),
    ("before", "変更前", "Before"),
    ("after", "変更後", "After"),
    ("no_changes", "変更はありません。", "Nothing changed."),
    (
        "emails_lead",
        "再送すると、すぐに送信をやり直します。",
        "Retrying sends the email again at once.",
    ),
    ("recipient", "宛先", "Recipient"),
    ("template", "種類", "Kind"),
    ("attempts", "試行回数", "Attempts"),
    ("reason", "理由", "Reason"),
    ("created_at", "作成日時", "Created"),
    ("retry", "再送する", "Retry"),
    (
        "no_failed",
        "送信できなかったメールはありません。",
        "No undelivered emails.",
    ),
    (
        "retried",
        "再送を予約しました。",
        "The email will be sent again.",
    ),
    ("yes", "はい", "Yes"),
    ("no", "いいえ", "No"),
    ("files", "添付ファイル {n} 件", "{n} attached files"),
    (
        "expired_title",
        "ログインが終了しました",
        "You have been signed out",
    ),
    (
        "expired_lead",
        "ログインの有効期限が切れたか、ほかの操作（パスワードの変更、アカウントの無効化など）でログインが終了しました。もう一度ログインしてください。",
        "Your sign-in expired or was ended (a password change, a deactivated account). Please sign in again.",
    ),
    ("back_to_queue", "キューに戻る", "Back to the queue"),
    ("accounts", "職員アカウント", "Staff accounts"),
    ("display_name", "氏名", "Name"),
    ("roles", "役割", "Roles"),
    ("role_clerk", "担当者", "Clerk"),
    ("role_supervisor", "監督者", "Supervisor"),
    ("role_admin", "管理者", "Admin"),
    ("account_state", "状態", "State"),
    ("active", "有効", "Active"),
    ("inactive", "無効", "Deactivated"),
    ("locked", "ログイン待機中", "Sign-in waiting"),
    ("set_role", "役割を設定", "Set a role"),
    (
        "new_account",
        "職員アカウントを作成",
        "Create a staff account",
    ),
    ("create_account", "作成する", "Create the account"),
    (
        "email_optional",
        "メールアドレス（任意）",
        "Email address (optional)",
    ),
    ("first_password", "最初のパスワード", "First password"),
    (
        "first_password_hint",
        "12文字以上。本人は最初のログインで変更します。",
        "At least 12 characters. They change it at first sign-in.",
    ),
    (
        "first_password_hint_oidc",
        "12文字以上。市の認証基盤だけでログインする職員なら空欄にします。",
        "At least 12 characters. Leave it empty for someone who signs in only through the city's sign-in service.",
    ),
    (
        "remove_from_division",
        "課から外す",
        "Remove from a division",
    ),
    ("remove_from", "この課から外す：", "Remove from"),
    ("deactivate", "無効にする", "Deactivate"),
    ("reactivate", "有効に戻す", "Reactivate"),
    ("reset_password", "パスワードを再設定", "Reset the password"),
    (
        "reset_password_hint",
        "12文字以上。本人は最初のログインで変更します。ほかのログインは終了します。",
        "At least 12 characters. They change it at first use; their sessions end.",
    ),
    ("audit", "変更履歴", "Audit history"),
    ("command_line", "コマンド", "Command line"),
    ("event_created", "作成", "Created"),
    ("event_role_set", "役割を設定", "Role set"),
    (
        "event_removed_from_division",
        "課から外した",
        "Removed from a division",
    ),
    ("event_deactivated", "無効にした", "Deactivated"),
    ("event_reactivated", "有効に戻した", "Reactivated"),
    (
        "event_password_changed",
        "パスワード変更",
        "Password changed",
    ),
    ("event_password_reset", "パスワード再設定", "Password reset"),
    (
        "event_linked_to_provider",
        "認証基盤と連携",
        "Linked to the sign-in service",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_both_languages_and_a_unique_key() {
        let mut keys = std::collections::BTreeSet::new();
        for (key, ja, en) in TEXTS {
            assert!(keys.insert(*key), "{key} twice");
            assert!(!ja.is_empty() && !en.is_empty(), "{key}");
        }
    }
}
