//! NDJSON backfill: one event per line, from a file or standard input.

use std::io::BufRead;

use buildcost_adapters::{Format, Normaliser};
use chrono::{DateTime, Utc};

use crate::dead_letter::{DeadLetterSink, Origin};
use crate::ingestor::Ingestor;
use crate::{Error, Result};

/// Feeds every line of `input` to `ingestor`. Blank lines are skipped; line numbers (from 1) go
/// into the dead letters as `file:line`. `progress` is called with the bytes read so far.
///
/// # Errors
/// The input cannot be read, or the store or dead-letter sink failed.
pub fn ingest_ndjson(
    input: &mut dyn BufRead,
    name: &str,
    ingestor: &mut Ingestor<'_>,
    dead_letters: &mut dyn DeadLetterSink,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    for_each_line(input, name, progress, &mut |message, origin| {
        ingestor
            .push(message, origin, now, dead_letters)
            .map(|_| ())
    })
}

/// Like [`ingest_ndjson`], for lines that are native payloads of a CI system (one webhook
/// payload or build JSON per line), normalised by `normaliser` first.
///
/// # Errors
/// As [`ingest_ndjson`].
#[allow(clippy::too_many_arguments)] // ingest_ndjson's arguments plus the format
pub fn ingest_native_ndjson(
    input: &mut dyn BufRead,
    name: &str,
    ingestor: &mut Ingestor<'_>,
    dead_letters: &mut dyn DeadLetterSink,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(u64),
    normaliser: &Normaliser,
    format: Format,
) -> Result<()> {
    for_each_line(input, name, progress, &mut |message, origin| {
        ingestor.push_native(normaliser, format, message, origin, now, dead_letters)
    })
}

/// Calls `each` with every non-blank line (without its line end) and its origin.
fn for_each_line(
    input: &mut dyn BufRead,
    name: &str,
    progress: &mut dyn FnMut(u64),
    each: &mut dyn FnMut(&[u8], &Origin) -> Result<()>,
) -> Result<()> {
    let mut line = Vec::with_capacity(4096);
    let mut number = 0u64;
    let mut bytes_read = 0u64;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|source| Error::Io {
                action: "read",
                path: name.into(),
                source,
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        bytes_read += n as u64;
        let mut message = line.as_slice();
        while let Some((last, rest)) = message.split_last() {
            if *last == b'\n' || *last == b'\r' {
                message = rest;
            } else {
                break;
            }
        }
        if message.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let origin = Origin::File {
            file: name.to_owned(),
            line: number,
        };
        each(message, &origin)?;
        if number.is_multiple_of(4096) {
            progress(bytes_read);
        }
    }
    progress(bytes_read);
    Ok(())
}
