//! Dead letters on a Kafka topic: the safe payload as the message, what happened in headers
//! ([`DeadLetter::headers`]). The consumer and the webhook receiver both produce through here.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::dead_letter::{DeadLetter, DeadLetterSink};
use crate::{Error, Result};

/// Queues `letter` on `topic`; the future resolves once the broker has it.
///
/// # Errors
/// The producer's queue refused the message (it is full or the producer is closing).
pub fn produce_dead_letter(
    producer: &FutureProducer,
    topic: &str,
    letter: &DeadLetter<'_>,
) -> Result<DeliveryFuture> {
    let body = letter.body();
    let pairs = letter.headers();
    let mut headers = OwnedHeaders::new_with_capacity(pairs.len());
    for (key, value) in &pairs {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_str()),
        });
    }
    let record = FutureRecord::<(), [u8]>::to(topic)
        .payload(&body)
        .headers(headers);
    producer.send_result(record).map_err(|(e, _)| Error::Kafka {
        context: "queue a dead letter",
        source: e,
    })
}

/// A [`DeadLetterSink`] on a topic: letters are queued at once and confirmed together by
/// [`KafkaDeadLetters::delivered`] (the consumer awaits them before it commits past them).
pub struct KafkaDeadLetters {
    producer: FutureProducer,
    topic: String,
    pending: Vec<DeliveryFuture>,
}

impl KafkaDeadLetters {
    /// A sink producing to `topic`.
    pub fn new(producer: FutureProducer, topic: impl Into<String>) -> Self {
        KafkaDeadLetters {
            producer,
            topic: topic.into(),
            pending: Vec::new(),
        }
    }

    /// Waits until the broker has every letter queued so far; returns how many.
    ///
    /// # Errors
    /// A letter could not be delivered (the broker refused it, or its timeout passed).
    pub async fn delivered(&mut self) -> Result<u64> {
        let mut n = 0;
        for delivery in std::mem::take(&mut self.pending) {
            match delivery.await {
                Ok(Ok(_)) => n += 1,
                Ok(Err((e, _))) => {
                    return Err(Error::Kafka {
                        context: "deliver a dead letter",
                        source: e,
                    })
                }
                Err(_) => {
                    return Err(Error::Kafka {
                        context: "deliver a dead letter",
                        source: rdkafka::error::KafkaError::Canceled,
                    })
                }
            }
        }
        Ok(n)
    }
}

impl DeadLetterSink for KafkaDeadLetters {
    fn send(&mut self, letter: &DeadLetter<'_>) -> Result<()> {
        let delivery = produce_dead_letter(&self.producer, &self.topic, letter)?;
        self.pending.push(delivery);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        futures::executor::block_on(self.delivered()).map(|_| ())
    }
}
