//! The rejection ledger: one line per rejected message (when, why, where from — never the
//! payload, which is in the dead letter), so reports can count rejections by reason for any
//! week, whether the messages came from a backfill or from Kafka.
//!
//! `<store>/rejections/<name>.tsv`, written atomically by the ingester that rejected them; each
//! line is `rejected_at<TAB>reason<TAB>origin`.

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};

use bytes::Bytes;

use crate::store::{key_name, Store};
use crate::Result;

/// The folder of the ledger, under the store's root.
pub const REJECTIONS_DIR: &str = "rejections";
const SUFFIX: &str = ".tsv";

/// One rejected message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub at: DateTime<Utc>,
    /// The reject reason (spec section 2).
    pub reason: String,
    /// `topic[partition]@offset` or `file:line`.
    pub origin: String,
}

impl Rejected {
    /// A replay of a Kafka message or of the same file line is the same rejection: this is
    /// the key it is counted once by. Standard-input origins (`-:line`) are not comparable
    /// between runs and get none.
    pub fn dedup_key(&self) -> Option<&str> {
        (!self.origin.starts_with("-:")).then_some(self.origin.as_str())
    }
}

fn clean(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}

impl Store {
    /// Records `records` as `rejections/<name>.tsv` (atomically; the same name replaces the file).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_rejections(&self, name: &str, records: &[Rejected]) -> Result<PathBuf> {
        let key = format!("{REJECTIONS_DIR}/{name}{SUFFIX}");
        let mut text = String::new();
        for r in records {
            text.push_str(&format!(
                "{}\t{}\t{}\n",
                r.at.to_rfc3339_opts(SecondsFormat::Millis, true),
                clean(&r.reason),
                clean(&r.origin)
            ));
        }
        self.backend().put(&key, Bytes::from(text))?;
        Ok(self.backend().locate(&key))
    }

    /// Every recorded rejection with `from <= at < to`, each replayed one once (see
    /// [`Rejected::dedup_key`]). Lines that do not parse are skipped with a warning.
    ///
    /// # Errors
    /// The ledger cannot be listed or a file read.
    pub fn read_rejections(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Rejected>> {
        let mut files = Vec::new();
        for entry in self.backend().list(REJECTIONS_DIR)? {
            let name = key_name(&entry.key);
            if name.ends_with(SUFFIX) && !name.starts_with('.') {
                files.push(entry.key);
            }
        }
        files.sort();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for key in files {
            let Some(bytes) = self.backend().get(&key)? else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let path = self.backend().locate(&key);
            for line in text.lines() {
                let mut parts = line.splitn(3, '\t');
                let parsed = match (parts.next(), parts.next(), parts.next()) {
                    (Some(at), Some(reason), Some(origin)) => {
                        DateTime::parse_from_rfc3339(at).ok().map(|at| Rejected {
                            at: at.with_timezone(&Utc),
                            reason: reason.to_owned(),
                            origin: origin.to_owned(),
                        })
                    }
                    _ => None,
                };
                let Some(r) = parsed else {
                    tracing::warn!(path = %path.display(), "skipping a rejection line that does not parse");
                    continue;
                };
                if r.at < from || r.at >= to {
                    continue;
                }
                if let Some(key) = r.dedup_key() {
                    if !seen.insert(key.to_owned()) {
                        continue;
                    }
                }
                out.push(r);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rejections_are_read_back_by_window_and_counted_once_per_origin() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let r = |at: &str, reason: &str, origin: &str| Rejected {
            at: t(at),
            reason: reason.into(),
            origin: origin.into(),
        };
        let first = [
            r("2026-11-16T10:00:00Z", "invalid_json", "ci[0]@5"),
            r("2026-11-16T11:00:00Z", "missing_field", "ci[1]@7"),
            r("2026-11-24T11:00:00Z", "missing_field", "ci[1]@90"),
            r("2026-11-17T11:00:00Z", "bad\ttab", "-:3"),
        ];
        store
            .write_rejections("a", &first)
            .unwrap_or_else(|e| panic!("{e}"));
        // A replay after a crash rejects ci[0]@5 again; stdin lines are never merged.
        let replay = [
            r("2026-11-16T12:00:00Z", "invalid_json", "ci[0]@5"),
            r("2026-11-18T11:00:00Z", "too_large", "-:3"),
        ];
        store
            .write_rejections("b", &replay)
            .unwrap_or_else(|e| panic!("{e}"));
        let week = store
            .read_rejections(t("2026-11-16T00:00:00Z"), t("2026-11-23T00:00:00Z"))
            .unwrap_or_else(|e| panic!("{e}"));
        let reasons: Vec<&str> = week.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            ["invalid_json", "missing_field", "bad tab", "too_large"]
        );
        assert!(store
            .read_rejections(t("2020-01-01T00:00:00Z"), t("2020-01-02T00:00:00Z"))
            .unwrap_or_else(|e| panic!("{e}"))
            .is_empty());
    }
}
