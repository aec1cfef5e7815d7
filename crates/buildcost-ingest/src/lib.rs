//! Ingestion: sources of build events, batching into Arrow record batches partitioned by day,
//! durable Parquet writes through the store, and the dead-letter sink for rejected messages.
//!
//! Bad input is data: every rejected message is counted by reason and dead-lettered, and the
//! other messages go on. An `event_id` already stored is counted as a duplicate and not stored
//! again, also across runs (the store's [`buildcost_store::EventIndex`]).
//!
//! ```
//! use buildcost_ingest::{ingest_ndjson, Ingestor, MemoryDeadLetters};
//! use buildcost_model::{Classifier, Decoder, Pseudonymiser};
//! use buildcost_store::Store;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//! let decoder = Decoder::new(65536, Pseudonymiser::new(b"key")?, Classifier::builtin()?);
//! let mut ingestor = Ingestor::new(decoder, &store, store.event_index(), "doc");
//! let mut dead = MemoryDeadLetters::default();
//! let input = b"{\"schema_version\":1}\nnot json\n";
//! ingest_ndjson(&mut &input[..], "input.ndjson", &mut ingestor, &mut dead, chrono::Utc::now(), &mut |_| {})?;
//! let summary = ingestor.finish(&mut dead)?;
//! assert_eq!(summary.rejected(), 2);
//! assert_eq!(dead.letters.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;
mod day_batches;
mod dead_letter;
mod error;
mod ingestor;
mod intake;
mod kafka;
mod ndjson;

pub use day_batches::DayBatches;
pub use dead_letter::{
    safe_payload, DeadLetter, DeadLetterSink, FileDeadLetters, MemoryDeadLetters, Origin,
    SafePayload, StoreDeadLetters, MAX_DEAD_PAYLOAD_BYTES, STRIPPED_FIELDS,
};
pub use error::{Error, Result};
pub use ingestor::{IngestSummary, Ingestor, Outcome};
pub use kafka::{
    produce_dead_letter, ConsumerStatus, IngestContext, KafkaDeadLetters, KafkaIngest,
    KafkaSettings,
};
pub use ndjson::{ingest_native_ndjson, ingest_ndjson};
