//! A payment's states and the one rule that moves between them.
//!
//! created → pending → succeeded | failed | expired | cancelled. Notifications arrive late,
//! twice and out of order, so the rule is commutative where money is concerned: **succeeded wins
//! from any state** (money was taken), and a success after a recorded failure, expiry or
//! cancellation is flagged for staff. Nothing leaves succeeded.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Stored; the resident has not reached the provider's page yet.
    Created,
    /// The provider knows of it; no final result yet.
    Pending,
    Succeeded,
    Failed,
    Expired,
    Cancelled,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Created,
            Self::Pending,
            Self::Succeeded,
            Self::Failed,
            Self::Expired,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }

    /// Still waiting for the provider's word.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Created | Self::Pending)
    }
}

/// What happened to a payment, as a provider reports it (notification or status query).
pub type Outcome = PaymentStatus;

/// The state after `reported` arrives in state `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub to: PaymentStatus,
    /// Money was taken after we had recorded that it would not be: staff must look.
    pub late_success: bool,
}

impl Transition {
    pub fn changes(&self, from: PaymentStatus) -> bool {
        self.to != from
    }
}

pub fn apply(from: PaymentStatus, reported: Outcome) -> Transition {
    use PaymentStatus as S;
    let to = match (from, reported) {
        (_, S::Succeeded) => S::Succeeded,
        // Nothing undoes a success; a final state is not reopened by a stale report.
        (S::Succeeded, _) => S::Succeeded,
        (S::Failed | S::Expired | S::Cancelled, _) => from,
        (S::Pending, S::Created) => S::Pending,
        (_, reported) => reported,
    };
    Transition {
        to,
        late_success: reported == S::Succeeded
            && matches!(from, S::Failed | S::Expired | S::Cancelled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentStatus as S;

    const ALL: [S; 6] = [
        S::Created,
        S::Pending,
        S::Succeeded,
        S::Failed,
        S::Expired,
        S::Cancelled,
    ];

    #[test]
    fn success_wins_from_every_state_and_is_never_undone() {
        for from in ALL {
            assert_eq!(apply(from, S::Succeeded).to, S::Succeeded, "{from:?}");
            for reported in ALL {
                assert_eq!(apply(S::Succeeded, reported).to, S::Succeeded);
            }
        }
    }

    #[test]
    fn a_success_after_a_failure_is_flagged() {
        assert!(apply(S::Failed, S::Succeeded).late_success);
        assert!(apply(S::Expired, S::Succeeded).late_success);
        assert!(!apply(S::Pending, S::Succeeded).late_success);
        assert!(!apply(S::Succeeded, S::Succeeded).late_success);
    }

    #[test]
    fn reordered_reports_end_in_the_same_state() {
        // failed then succeeded, and succeeded then failed, both end succeeded.
        let one = apply(apply(S::Pending, S::Failed).to, S::Succeeded).to;
        let other = apply(apply(S::Pending, S::Succeeded).to, S::Failed).to;
        assert_eq!((one, other), (S::Succeeded, S::Succeeded));
        assert_eq!(apply(S::Failed, S::Pending).to, S::Failed);
        assert_eq!(S::parse("cancelled"), Some(S::Cancelled));
    }
}
