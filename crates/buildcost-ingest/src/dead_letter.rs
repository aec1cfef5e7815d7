//! Dead letters: every rejected message, with its reason, a detail and where it came from.
//!
//! The payload is kept so an operator can fix and replay it, but stripped of identity and free
//! text first ([`STRIPPED_FIELDS`]: `author`, `log_excerpt`, a build's `change_title`, a
//! request's `title`, `description` and `reporter`): when it is a JSON object, those fields are
//! removed; when it is not JSON, its NUL bytes are dropped (so UTF-16 text reads as text), the
//! value after any of those keys is blanked — in any case, double-, single- or un-quoted, after
//! `:` or `=` — and it is cut to [`MAX_DEAD_PAYLOAD_BYTES`].

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use buildcost_model::Rejection;
use regex::bytes::Regex;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// Longest payload text kept in a dead letter when the payload is not a JSON object.
pub const MAX_DEAD_PAYLOAD_BYTES: usize = 64 * 1024;

/// The fields removed from every dead-lettered payload.
pub const STRIPPED_FIELDS: &[&str] = &[
    "author",
    "log_excerpt",
    "change_title",
    "title",
    "description",
    "reporter",
];

/// Where a message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Origin {
    /// A line of an NDJSON file (`-` for standard input); lines count from 1.
    File { file: String, line: u64 },
    /// A Kafka message.
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
    /// A payload posted to `buildcost webhook` (`source`: `github`, `gitlab`, …).
    Webhook { webhook: String },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { file, line } => write!(f, "{file}:{line}"),
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => write!(f, "{topic}[{partition}]@{offset}"),
            Origin::Webhook { webhook } => write!(f, "webhook/{webhook}"),
        }
    }
}

/// A payload made safe to keep.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SafePayload {
    /// A JSON object without the [`STRIPPED_FIELDS`].
    Json(Map<String, Value>),
    /// Anything else, as (lossy UTF-8) text with identity fields blanked, possibly cut.
    Text {
        text: String,
        original_bytes: usize,
        truncated: bool,
    },
}

/// An identity key and what separates it from its value, in any case and quoting.
static IDENTITY_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)(author|log_excerpt|change_title|title|description|reporter)["']?\s*[:=]\s*"#)
        .unwrap_or_else(|_| unreachable!())
});

/// Where the value starting at `text[start..]` ends: a quoted value at the first matching quote
/// (not escaped) that is followed by a `,`, `}` or `]` or the end; an unquoted one at the first
/// `,`, `;`, `}`, `]` or line break. Greedy on purpose: a log line may hold the quote itself.
fn value_end(text: &[u8], start: usize) -> usize {
    let Some(&quote) = text.get(start).filter(|q| **q == b'"' || **q == b'\'') else {
        return text[start..]
            .iter()
            .position(|b| b",;}]\r\n".contains(b))
            .map_or(text.len(), |i| start + i);
    };
    let mut i = start + 1;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b if b == quote => {
                let rest = text[i + 1..].iter().find(|b| !b.is_ascii_whitespace());
                if matches!(rest, None | Some(b',' | b'}' | b']')) {
                    return i + 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    text.len()
}

/// Replaces the value of every identity key in `text` by `"<removed>"`.
fn blank_identities(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    while let Some(key) = IDENTITY_KEY.find_at(text, at) {
        out.extend_from_slice(&text[at..key.end()]);
        out.extend_from_slice(b"\"<removed>\"");
        at = value_end(text, key.end()).max(key.end());
    }
    out.extend_from_slice(&text[at..]);
    out
}

/// Makes a rejected payload safe to keep (see the module docs).
pub fn safe_payload(payload: &[u8]) -> SafePayload {
    if let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(payload) {
        for field in STRIPPED_FIELDS {
            map.remove(*field);
        }
        return SafePayload::Json(map);
    }
    let truncated = payload.len() > MAX_DEAD_PAYLOAD_BYTES;
    let kept: Vec<u8> = payload[..payload.len().min(MAX_DEAD_PAYLOAD_BYTES)]
        .iter()
        .copied()
        .filter(|b| *b != 0)
        .collect();
    let blanked = blank_identities(&kept);
    SafePayload::Text {
        text: String::from_utf8_lossy(&blanked).into_owned(),
        original_bytes: payload.len(),
        truncated,
    }
}

/// One dead letter as written.
#[derive(Debug, Serialize)]
pub struct DeadLetter<'a> {
    pub reason: &'static str,
    pub detail: &'a str,
    pub origin: &'a Origin,
    pub payload: SafePayload,
    pub dead_lettered_at: String,
}

impl<'a> DeadLetter<'a> {
    /// The dead letter of a rejected message.
    pub fn new(rejection: &'a Rejection, origin: &'a Origin, payload: &[u8]) -> Self {
        DeadLetter {
            reason: rejection.reason.as_str(),
            detail: &rejection.detail,
            origin,
            payload: safe_payload(payload),
            dead_lettered_at: chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

impl DeadLetter<'_> {
    /// The body of the letter on a dead-letter topic: the safe payload itself (JSON, or its
    /// text); what happened goes in [`DeadLetter::headers`].
    pub fn body(&self) -> Vec<u8> {
        match &self.payload {
            SafePayload::Json(map) => serde_json::to_vec(map).unwrap_or_default(),
            SafePayload::Text { text, .. } => text.clone().into_bytes(),
        }
    }

    /// The headers of the letter on a dead-letter topic, the one spelling every producer
    /// uses: `buildcost.reason`, `buildcost.detail`, `buildcost.source` (the origin as text),
    /// and for a Kafka message `buildcost.source.topic`, `.partition`, `.offset`.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("buildcost.reason", self.reason.to_owned()),
            ("buildcost.detail", self.detail.to_owned()),
            ("buildcost.source", self.origin.to_string()),
        ];
        if let Origin::Kafka {
            topic,
            partition,
            offset,
        } = self.origin
        {
            out.push(("buildcost.source.topic", topic.clone()));
            out.push(("buildcost.source.partition", partition.to_string()));
            out.push(("buildcost.source.offset", offset.to_string()));
        }
        out
    }
}

/// Where dead letters go. Small by design: a file here, a Kafka topic in the service.
pub trait DeadLetterSink {
    /// Keeps one dead letter.
    ///
    /// # Errors
    /// The letter could not be kept; the caller stops rather than lose it.
    fn send(&mut self, letter: &DeadLetter<'_>) -> Result<()>;

    /// Makes every letter sent so far durable.
    ///
    /// # Errors
    /// The letters could not be made durable.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Dead letters as NDJSON in a file, created on the first letter.
pub struct FileDeadLetters {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    written: u64,
}

impl FileDeadLetters {
    /// A sink that will write to `path` (its folder is created when needed).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileDeadLetters {
            path: path.into(),
            out: None,
            written: 0,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Letters written.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn io(&self, action: &'static str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io {
            action,
            path: self.path.clone(),
            source,
        }
    }
}

impl DeadLetterSink for FileDeadLetters {
    fn send(&mut self, letter: &DeadLetter<'_>) -> Result<()> {
        if self.out.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(self.io("create dead-letter folder"))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(self.io("open dead-letter file"))?;
            self.out = Some(BufWriter::new(file));
        }
        let mut line = serde_json::to_vec(letter).unwrap_or_default();
        line.push(b'\n');
        let path = self.path.clone();
        if let Some(out) = self.out.as_mut() {
            out.write_all(&line).map_err(|source| Error::Io {
                action: "write dead letter",
                path,
                source,
            })?;
        }
        self.written += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let path = self.path.clone();
        if let Some(out) = self.out.as_mut() {
            out.flush()
                .and_then(|()| out.get_ref().sync_all())
                .map_err(|source| Error::Io {
                    action: "sync dead letters",
                    path,
                    source,
                })?;
        }
        Ok(())
    }
}

/// Dead letters as NDJSON objects in the store, for a store on an object store (which cannot
/// append): each [`DeadLetterSink::flush`] that has letters writes them as
/// `dead-letter/<name>-<part>.ndjson`, under deterministic names.
pub struct StoreDeadLetters {
    store: buildcost_store::Store,
    name: String,
    buffer: Vec<u8>,
    part: u32,
    written: u64,
}

impl StoreDeadLetters {
    /// A sink writing `dead-letter/<name>-<part>.ndjson` objects to `store`.
    pub fn new(store: buildcost_store::Store, name: impl Into<String>) -> Self {
        StoreDeadLetters {
            store,
            name: name.into(),
            buffer: Vec::new(),
            part: 0,
            written: 0,
        }
    }

    /// Where the letters go (`<store>/dead-letter/<name>-*.ndjson`).
    pub fn location(&self) -> PathBuf {
        self.store
            .root()
            .join(buildcost_store::DEAD_LETTER_DIR)
            .join(format!("{}-*.ndjson", self.name))
    }

    /// Letters written.
    pub fn written(&self) -> u64 {
        self.written
    }
}

impl DeadLetterSink for StoreDeadLetters {
    fn send(&mut self, letter: &DeadLetter<'_>) -> Result<()> {
        let mut line = serde_json::to_vec(letter).unwrap_or_default();
        line.push(b'\n');
        self.buffer.extend_from_slice(&line);
        self.written += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let key = format!(
            "{}/{}-{:06}.ndjson",
            buildcost_store::DEAD_LETTER_DIR,
            self.name,
            self.part
        );
        self.store.write_blob(&key, &self.buffer)?;
        self.buffer.clear();
        self.part += 1;
        Ok(())
    }
}

/// Keeps dead letters in memory (tests, and callers that forward them elsewhere).
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    pub letters: Vec<Value>,
}

impl DeadLetterSink for MemoryDeadLetters {
    fn send(&mut self, letter: &DeadLetter<'_>) -> Result<()> {
        self.letters
            .push(serde_json::to_value(letter).unwrap_or(Value::Null));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_payloads_lose_author_and_log() {
        let p = safe_payload(
            br#"{"event_id":"e","author":"Jane Doe","log_excerpt":"Jane broke it","team":"t"}"#,
        );
        let SafePayload::Json(map) = p else {
            panic!("expected JSON")
        };
        assert_eq!(map.len(), 2);
        assert!(map.contains_key("event_id") && map.contains_key("team"));
    }

    #[test]
    fn text_payloads_are_blanked_and_cut() {
        let p = safe_payload(
            br#"{"event_id":"e","author":"Jane \"JD\" Doe","log_excerpt":"by Jane","team":"#,
        );
        let SafePayload::Text {
            text, truncated, ..
        } = p
        else {
            panic!("expected text")
        };
        assert!(!text.contains("Jane"), "{text}");
        assert!(text.contains(r#""author":"<removed>""#), "{text}");
        assert!(!truncated);
        let unterminated = safe_payload(br#"{"author": "Jane Do"#);
        let SafePayload::Text { text, .. } = unterminated else {
            panic!()
        };
        assert!(!text.contains("Jane"), "{text}");

        // Other quotings and encodings of the same key.
        let utf16: Vec<u8> =
            r#"{"author": "Jane Doe", "x": 1"#.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for hostile in [
            &br#"{'author': 'Jane Doe', 'team': 't'"#[..],
            b"{author: Jane Doe, team: t",
            b"AUTHOR=Jane Doe\nteam=t",
            br#"{"Author" : "Jane \u0044oe"#,
            &utf16,
        ] {
            let SafePayload::Text { text, .. } = safe_payload(hostile) else {
                panic!()
            };
            assert!(!text.contains("Jane"), "{text}");
        }

        let big = vec![b'x'; MAX_DEAD_PAYLOAD_BYTES + 10];
        let SafePayload::Text {
            text,
            truncated,
            original_bytes,
        } = safe_payload(&big)
        else {
            panic!()
        };
        assert!(truncated);
        assert_eq!(text.len(), MAX_DEAD_PAYLOAD_BYTES);
        assert_eq!(original_bytes, MAX_DEAD_PAYLOAD_BYTES + 10);
    }
}
