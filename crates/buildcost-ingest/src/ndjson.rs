//! NDJSON backfill: one event per line, from a file or standard input.
//!
//! Lines are read in chunks; a chunk is decoded on every core (rayon) while the chunk before
//! it is taken into the ingestor (de-duplicated, batched, written) on the calling thread, in
//! line order, so the outcome is the same as one line after the other.

use std::io::BufRead;

use buildcost_adapters::{Format, Normaliser};
use buildcost_model::{Event, Rejection};
use chrono::{DateTime, Utc};
use rayon::prelude::*;

use crate::dead_letter::{DeadLetterSink, Origin};
use crate::ingestor::Ingestor;
use crate::{Error, Result};

/// Lines decoded together.
const CHUNK_LINES: usize = 8192;

/// A chunk of non-blank lines with their line numbers, and the bytes read up to its end.
#[derive(Default)]
struct Chunk {
    lines: Vec<(u64, Vec<u8>)>,
    bytes_read: u64,
}

type Decoded = std::result::Result<Event, Rejection>;

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
    let decoder = ingestor.decoder().clone();
    let mut lines = Lines::default();
    let mut current: Option<(Chunk, Vec<Decoded>)> = None;
    loop {
        let next = lines.chunk(input, name, CHUNK_LINES)?;
        let mut decoded: Vec<Decoded> = Vec::new();
        let mut taken: Result<()> = Ok(());
        rayon::in_place_scope(|scope| {
            if !next.lines.is_empty() {
                let (lines, decoded, decoder) = (&next.lines, &mut decoded, &decoder);
                scope.spawn(move |_| {
                    *decoded = lines
                        .par_iter()
                        .map(|(_, line)| decoder.decode(line, now))
                        .collect();
                });
            }
            if let Some((chunk, results)) = current.take() {
                taken = take_chunk(&chunk, results, name, ingestor, dead_letters, now);
                progress(chunk.bytes_read);
            }
        });
        taken?;
        if next.lines.is_empty() {
            progress(next.bytes_read);
            return Ok(());
        }
        current = Some((next, decoded));
    }
}

/// Takes a decoded chunk into the ingestor, in line order.
fn take_chunk(
    chunk: &Chunk,
    decoded: Vec<Decoded>,
    name: &str,
    ingestor: &mut Ingestor<'_>,
    dead_letters: &mut dyn DeadLetterSink,
    now: DateTime<Utc>,
) -> Result<()> {
    for ((line, payload), decoded) in chunk.lines.iter().zip(decoded) {
        let origin = Origin::File {
            file: name.to_owned(),
            line: *line,
        };
        ingestor.push_decoded(decoded, payload, &origin, now, dead_letters)?;
    }
    Ok(())
}

/// Reads an input line by line, counting lines and bytes.
#[derive(Default)]
struct Lines {
    number: u64,
    bytes_read: u64,
}

impl Lines {
    /// The next non-blank line into `line` (without its line end), with its number; `None` at
    /// the end.
    fn next(
        &mut self,
        input: &mut dyn BufRead,
        name: &str,
        line: &mut Vec<u8>,
    ) -> Result<Option<u64>> {
        loop {
            line.clear();
            let n = input.read_until(b'\n', line).map_err(|source| Error::Io {
                action: "read",
                path: name.into(),
                source,
            })?;
            if n == 0 {
                return Ok(None);
            }
            self.number += 1;
            self.bytes_read += n as u64;
            let kept = trim_line_end(line).len();
            line.truncate(kept);
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(self.number));
            }
        }
    }

    /// The next (at most) `max` non-blank lines; none at the end.
    fn chunk(&mut self, input: &mut dyn BufRead, name: &str, max: usize) -> Result<Chunk> {
        let mut chunk = Chunk::default();
        let mut line = Vec::with_capacity(4096);
        while chunk.lines.len() < max {
            let Some(number) = self.next(input, name, &mut line)? else {
                break;
            };
            chunk.lines.push((number, line.clone()));
        }
        chunk.bytes_read = self.bytes_read;
        Ok(chunk)
    }
}

/// `line` without its trailing `\n` and `\r`s.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut message = line;
    while let Some((last, rest)) = message.split_last() {
        if *last == b'\n' || *last == b'\r' {
            message = rest;
        } else {
            break;
        }
    }
    message
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
    let mut lines = Lines::default();
    let mut line = Vec::with_capacity(4096);
    while let Some(number) = lines.next(input, name, &mut line)? {
        let origin = Origin::File {
            file: name.to_owned(),
            line: number,
        };
        each(&line, &origin)?;
        if number.is_multiple_of(4096) {
            progress(lines.bytes_read);
        }
    }
    progress(lines.bytes_read);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dead_letter::MemoryDeadLetters;
    use buildcost_model::{Classifier, Decoder, Pseudonymiser};
    use buildcost_store::Store;

    fn decoder() -> Decoder {
        Decoder::new(
            65536,
            Pseudonymiser::new(b"k").unwrap_or_else(|_| unreachable!()),
            Classifier::builtin().unwrap_or_else(|_| unreachable!()),
        )
    }

    /// Decoding chunks on every core gives exactly what one line after the other gives:
    /// the same counts, the same dead letters in the same order, the same stored rows.
    #[test]
    fn chunks_decoded_in_parallel_give_the_sequential_outcome() {
        let mut lines = Vec::new();
        let mut generator =
            buildcost_generate::Generator::new(buildcost_generate::GeneratorConfig {
                seed: 5,
                teams: 12,
                days: 3,
                builds_per_day: 6_000,
                end: Utc::now(),
                invalid_ratio: 0.02,
                duplicate_ratio: 0.02,
                deliveries: true,
            });
        generator.for_each_line(
            &mut |l| lines.push(l.to_owned()),
            &mut buildcost_generate::GenStats::default(),
        );
        // Blank lines and a duplicate across a chunk boundary.
        lines.insert(100, String::new());
        lines.push(lines[CHUNK_LINES - 1].clone());
        assert!(
            lines.len() > 2 * CHUNK_LINES,
            "the input spans several chunks"
        );
        let text = lines.join("\n");
        let now = Utc::now();

        let run = |parallel: bool| {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
            let mut ingestor = Ingestor::new(decoder(), &store, store.event_index(), "t");
            let mut dead = MemoryDeadLetters::default();
            if parallel {
                ingest_ndjson(
                    &mut text.as_bytes(),
                    "in",
                    &mut ingestor,
                    &mut dead,
                    now,
                    &mut |_| {},
                )
                .unwrap_or_else(|e| panic!("{e}"));
            } else {
                for_each_line(&mut text.as_bytes(), "in", &mut |_| {}, &mut |m, origin| {
                    ingestor.push(m, origin, now, &mut dead).map(|_| ())
                })
                .unwrap_or_else(|e| panic!("{e}"));
            }
            let summary = ingestor.finish(&mut dead).unwrap_or_else(|e| panic!("{e}"));
            let mut ids: Vec<(String, u32)> = store
                .event_id_counts()
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .collect();
            ids.sort();
            let letters: Vec<(String, String)> = dead
                .letters
                .iter()
                .map(|l| (l["reason"].to_string(), l["origin"].to_string()))
                .collect();
            (summary, ids, letters)
        };
        let (parallel, sequential) = (run(true), run(false));
        assert!(parallel.0.rejected() > 0 && parallel.0.duplicates > 0);
        assert_eq!(parallel.0, sequential.0);
        assert_eq!(parallel.1, sequential.1);
        assert_eq!(parallel.2, sequential.2);
    }
}
