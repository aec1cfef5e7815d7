//! The closed vocabularies of a build event and the validated row that ingest stores.

use chrono::{DateTime, Utc};

/// A closed set of wire spellings (status, trigger, stage, category, …).
pub trait Vocabulary: Sized + Copy + 'static {
    /// Every value, in spec order.
    const ALL: &'static [Self];
    /// Parses the exact wire spelling.
    fn parse(text: &str) -> Option<Self>;
    /// The wire spelling.
    fn as_str(self) -> &'static str;

    /// All spellings joined with `, ` (for error details).
    fn spellings() -> String {
        Self::ALL
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the order of the spec.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire / storage spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the exact wire spelling (case-sensitive).
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The position in [`Self::ALL`] (a compact, stable code).
            pub fn index(self) -> u8 {
                // Every vocabulary has far fewer than 256 values.
                #[allow(clippy::cast_possible_truncation)]
                { self as u8 }
            }

            /// The value at `index` in [`Self::ALL`].
            pub fn from_index(index: u8) -> Option<Self> {
                Self::ALL.get(usize::from(index)).copied()
            }
        }

        impl $crate::event::Vocabulary for $name {
            const ALL: &'static [Self] = $name::ALL;
            fn parse(text: &str) -> Option<Self> { $name::parse(text) }
            fn as_str(self) -> &'static str { $name::as_str(self) }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use vocabulary;

vocabulary!(
    /// How a build ended.
    Status {
        Success => "success",
        Failure => "failure",
        Cancelled => "cancelled",
        Timeout => "timeout",
        Error => "error",
    }
);

vocabulary!(
    /// What started a build.
    Trigger {
        Push => "push",
        PullRequest => "pull_request",
        Merge => "merge",
        Schedule => "schedule",
        Manual => "manual",
        Api => "api",
        Retry => "retry",
        Other => "other",
    }
);

vocabulary!(
    /// The stage a failed build failed in, as the CI system reports it.
    FailureStage {
        Checkout => "checkout",
        Dependencies => "dependencies",
        Compile => "compile",
        Lint => "lint",
        Format => "format",
        UnitTest => "unit_test",
        IntegrationTest => "integration_test",
        Package => "package",
        Publish => "publish",
        Deploy => "deploy",
        Infra => "infra",
        Other => "other",
    }
);

vocabulary!(
    /// Why a build failed.
    FailureCategory {
        Syntax => "syntax",
        Compile => "compile",
        Lint => "lint",
        Format => "format",
        Test => "test",
        FlakyTest => "flaky_test",
        Dependency => "dependency",
        Infra => "infra",
        Unknown => "unknown",
    }
);

vocabulary!(
    /// Where a stored failure category came from.
    CategorySource {
        Event => "event",
        Log => "log",
        Stage => "stage",
        Default => "default",
    }
);

vocabulary!(
    /// The one waste class of a build (spec section 6), first match wins in this order.
    WasteClass {
        Superseded => "superseded",
        AvoidableFailure => "avoidable_failure",
        Flaky => "flaky",
        InfraFailure => "infra_failure",
        Timeout => "timeout",
        Cancelled => "cancelled",
        Duplicate => "duplicate",
        None => "none",
    }
);

impl WasteClass {
    /// The classes that are waste (every class but `none`), in spec order.
    pub const WASTE: &'static [WasteClass] = &[
        WasteClass::Superseded,
        WasteClass::AvoidableFailure,
        WasteClass::Flaky,
        WasteClass::InfraFailure,
        WasteClass::Timeout,
        WasteClass::Cancelled,
        WasteClass::Duplicate,
    ];

    /// The waste class of one build (spec section 6), first match wins. `repeat_success`: the
    /// build is a success with a commit, and another success of the same (repository,
    /// pipeline, commit) finished earlier (ties: the smaller `event_id` is the earlier). This
    /// is the one place the rule is written: the figures engine calls it, and so does the
    /// `waste_class` SQL function of the `builds` view.
    pub fn of_build(
        status: Status,
        superseded: bool,
        category: Option<FailureCategory>,
        repeat_success: bool,
    ) -> WasteClass {
        use FailureCategory as C;
        match (status, category) {
            (Status::Cancelled, _) if superseded => WasteClass::Superseded,
            (Status::Failure, Some(C::Syntax | C::Compile | C::Lint | C::Format)) => {
                WasteClass::AvoidableFailure
            }
            (Status::Failure, Some(C::FlakyTest)) => WasteClass::Flaky,
            (Status::Error, _) | (Status::Failure, Some(C::Infra)) => WasteClass::InfraFailure,
            (Status::Timeout, _) => WasteClass::Timeout,
            (Status::Cancelled, _) => WasteClass::Cancelled,
            (Status::Success, _) if repeat_success => WasteClass::Duplicate,
            _ => WasteClass::None,
        }
    }

    /// Who can remove this waste: `developer`, `platform`, or `none`.
    pub fn owner(self) -> &'static str {
        match self {
            WasteClass::Superseded
            | WasteClass::AvoidableFailure
            | WasteClass::Cancelled
            | WasteClass::Duplicate => "developer",
            WasteClass::Flaky | WasteClass::InfraFailure | WasteClass::Timeout => "platform",
            WasteClass::None => "none",
        }
    }
}

impl FailureStage {
    /// The category a stage implies when neither the event nor its log says (spec section 3, step 2).
    pub fn implied_category(self) -> Option<FailureCategory> {
        match self {
            FailureStage::Compile => Some(FailureCategory::Compile),
            FailureStage::Lint => Some(FailureCategory::Lint),
            FailureStage::Format => Some(FailureCategory::Format),
            FailureStage::UnitTest | FailureStage::IntegrationTest => Some(FailureCategory::Test),
            FailureStage::Dependencies => Some(FailureCategory::Dependency),
            FailureStage::Checkout | FailureStage::Infra => Some(FailureCategory::Infra),
            _ => None,
        }
    }
}

/// A validated, normalised, pseudonymised build: what the store keeps.
///
/// It holds no raw identity and no log text: `author` became [`BuildRow::author_key`] and
/// `log_excerpt` was only used to fill [`BuildRow::failure_category`].
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRow {
    pub event_id: String,
    pub source: String,
    pub build_id: String,
    pub pipeline: String,
    pub repository: String,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub trigger: Trigger,
    pub team: String,
    pub product: String,
    pub author_key: Option<String>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `finished_at - started_at` in seconds, from the full-precision timestamps.
    pub duration_s: f64,
    pub status: Status,
    pub failure_stage: Option<FailureStage>,
    pub failure_category: Option<FailureCategory>,
    pub category_source: Option<CategorySource>,
    pub runner_class: String,
    pub cpu_cores: Option<f64>,
    pub memory_gb: Option<f64>,
    pub gpus: Option<i64>,
    pub attempt: i64,
    pub superseded: bool,
    pub correlation_id: Option<String>,
    /// Sorted and distinct: `correlation_id` and the request ids found in `branch` and the
    /// change title (spec section 12).
    pub request_ids: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub ingested_at: DateTime<Utc>,
}

impl BuildRow {
    /// The UTC day this build is stored under (the day of `finished_at`).
    pub fn day(&self) -> chrono::NaiveDate {
        self.finished_at.date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_waste_class_wins() {
        use FailureCategory as C;
        let of = WasteClass::of_build;
        assert_eq!(
            of(Status::Cancelled, true, Some(C::Syntax), false),
            WasteClass::Superseded
        );
        assert_eq!(
            of(Status::Failure, false, Some(C::Lint), false),
            WasteClass::AvoidableFailure
        );
        assert_eq!(
            of(Status::Failure, false, Some(C::FlakyTest), false),
            WasteClass::Flaky
        );
        assert_eq!(
            of(Status::Failure, false, Some(C::Infra), false),
            WasteClass::InfraFailure
        );
        assert_eq!(
            of(Status::Error, false, None, false),
            WasteClass::InfraFailure
        );
        assert_eq!(of(Status::Timeout, true, None, false), WasteClass::Timeout);
        assert_eq!(
            of(Status::Cancelled, false, None, false),
            WasteClass::Cancelled
        );
        assert_eq!(of(Status::Success, true, None, true), WasteClass::Duplicate);
        assert_eq!(of(Status::Success, true, None, false), WasteClass::None);
        assert_eq!(
            of(Status::Failure, false, Some(C::Test), true),
            WasteClass::None
        );
        assert_eq!(of(Status::Failure, false, None, false), WasteClass::None);
    }
}
