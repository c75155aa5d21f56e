//! The one state machine every status change goes through.
//!
//! submitted (送信済) → in_progress (処理中) → returned (差し戻し) → submitted … →
//! completed (処理完了) | rejected (申請却下); withdrawn (取下げ) by the resident before a decision.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Stored, its fee due at submission not yet paid: in no queue (支払待ち).
    AwaitingPayment,
    /// Nobody paid in time; the resident may apply again.
    PaymentExpired,
    Submitted,
    InProgress,
    Returned,
    Completed,
    Rejected,
    Withdrawn,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "awaiting_payment",
            Self::PaymentExpired => "payment_expired",
            Self::Submitted => "submitted",
            Self::InProgress => "in_progress",
            Self::Returned => "returned",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::AwaitingPayment,
            Self::PaymentExpired,
            Self::Submitted,
            Self::InProgress,
            Self::Returned,
            Self::Completed,
            Self::Rejected,
            Self::Withdrawn,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    /// The Japanese name residents know from paper and other systems.
    pub fn label_ja(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "支払待ち",
            Self::PaymentExpired => "支払期限切れ",
            Self::Submitted => "送信済",
            Self::InProgress => "処理中",
            Self::Returned => "差し戻し",
            Self::Completed => "処理完了",
            Self::Rejected => "申請却下",
            Self::Withdrawn => "取下げ",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "Awaiting payment",
            Self::PaymentExpired => "Payment expired",
            Self::Submitted => "Submitted",
            Self::InProgress => "In progress",
            Self::Returned => "Returned for correction",
            Self::Completed => "Completed",
            Self::Rejected => "Rejected",
            Self::Withdrawn => "Withdrawn",
        }
    }

    /// No further change is possible.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Rejected | Self::Withdrawn | Self::PaymentExpired
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Staff take it up (claim).
    Start,
    /// Staff put it back in the queue unprocessed.
    Release,
    /// Staff ask the resident for corrections.
    Return,
    /// The resident answers a return.
    Resubmit,
    Complete,
    Reject,
    /// The resident withdraws.
    Withdraw,
}

/// The status after `action` from `from`, or `None` when the lifecycle forbids it.
pub fn next(from: Status, action: Action) -> Option<Status> {
    use Action as A;
    use Status as S;
    match (from, action) {
        (S::Submitted, A::Start) => Some(S::InProgress),
        (S::InProgress, A::Release) => Some(S::Submitted),
        (S::InProgress, A::Return) => Some(S::Returned),
        (S::Returned, A::Resubmit) => Some(S::Submitted),
        (S::InProgress, A::Complete) => Some(S::Completed),
        (S::InProgress, A::Reject) => Some(S::Rejected),
        (S::Submitted | S::InProgress | S::Returned | S::AwaitingPayment, A::Withdraw) => {
            Some(S::Withdrawn)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_are_final() {
        for decided in [Status::Completed, Status::Rejected, Status::Withdrawn] {
            for action in [
                Action::Start,
                Action::Release,
                Action::Return,
                Action::Resubmit,
                Action::Complete,
                Action::Reject,
                Action::Withdraw,
            ] {
                assert_eq!(next(decided, action), None, "{decided:?} {action:?}");
            }
        }
    }

    #[test]
    fn the_round_trip_of_a_return() {
        let mut status = Status::Submitted;
        for action in [
            Action::Start,
            Action::Return,
            Action::Resubmit,
            Action::Start,
            Action::Complete,
        ] {
            status = next(status, action).unwrap_or_else(|| panic!("{status:?} {action:?}"));
        }
        assert_eq!(status, Status::Completed);
        assert_eq!(
            next(Status::Submitted, Action::Complete),
            None,
            "a decision needs processing first"
        );
    }
}
