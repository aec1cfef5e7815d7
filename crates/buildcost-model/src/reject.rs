//! Rejections: the closed set of reasons a message is not stored (spec section 2).

/// Why a message was rejected. Exactly one per rejected message; checks run in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    TooLarge,
    InvalidJson,
    UnsupportedVersion,
    MissingField,
    InvalidField,
    InvalidTimestamp,
}

impl RejectReason {
    /// Every reason, in check order.
    pub const ALL: &'static [RejectReason] = &[
        RejectReason::TooLarge,
        RejectReason::InvalidJson,
        RejectReason::UnsupportedVersion,
        RejectReason::MissingField,
        RejectReason::InvalidField,
        RejectReason::InvalidTimestamp,
    ];

    /// The spelling used in summaries, dead letters and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::TooLarge => "too_large",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::UnsupportedVersion => "unsupported_version",
            RejectReason::MissingField => "missing_field",
            RejectReason::InvalidField => "invalid_field",
            RejectReason::InvalidTimestamp => "invalid_timestamp",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected message: its reason and a detail a human can act on.
///
/// The detail names the field and the rule; it never quotes `author` or `log_excerpt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    /// A rejection for `reason`; `detail` names the field and the rule, never a person.
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// Rejection counts by reason, in check order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectCounts([u64; 6]);

impl RejectCounts {
    /// Counts one rejection.
    pub fn add(&mut self, reason: RejectReason, n: u64) {
        self.0[reason as usize] += n;
    }

    /// The count for one reason.
    pub fn get(&self, reason: RejectReason) -> u64 {
        self.0[reason as usize]
    }

    /// Total rejections.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` for every reason, zeros included, in check order.
    pub fn iter(&self) -> impl Iterator<Item = (RejectReason, u64)> + '_ {
        RejectReason::ALL.iter().map(|r| (*r, self.get(*r)))
    }

    /// Adds another set of counts into this one.
    pub fn merge(&mut self, other: &RejectCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }
}
