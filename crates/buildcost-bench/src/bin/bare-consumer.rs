//! `bare-consumer`: the floor any consumer of a topic pays. It consumes a topic in a consumer
//! group with the same rdkafka (and librdkafka) as buildcost and only counts each message's
//! bytes, until it has seen `--messages` of them; then it prints one line of JSON:
//! `{"messages":…,"bytes":…,"seconds":…}`. The macro benchmark (`benches/pipeline.sh`) times
//! `buildcost ingest` against it on the same topic.

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;

/// Consume a topic and count its bytes: the floor of any consumer.
#[derive(Debug, Parser)]
struct Args {
    /// Bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// Topic to read from its start.
    #[arg(long)]
    topic: String,
    /// Stop after this many messages.
    #[arg(long)]
    messages: u64,
    /// Consumer group (a fresh one reads from the earliest offset).
    #[arg(long, default_value = "bare-consumer")]
    group: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let consumer: BaseConsumer = match ClientConfig::new()
        .set("bootstrap.servers", &args.brokers)
        .set("group.id", &args.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot create the consumer: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = consumer.subscribe(&[&args.topic]) {
        eprintln!("error: cannot subscribe to `{}`: {e}", args.topic);
        return std::process::ExitCode::from(2);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout);
    let (mut messages, mut bytes) = (0u64, 0u64);
    while messages < args.messages {
        if Instant::now() > deadline {
            eprintln!(
                "error: {messages} of {} messages after {} s",
                args.messages, args.timeout
            );
            return std::process::ExitCode::from(1);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                messages += 1;
                bytes += m.payload().map_or(0, |p| p.len() as u64);
            }
            Some(Err(e)) => eprintln!("consumer error: {e}"),
            None => {}
        }
    }
    println!(
        "{{\"messages\":{messages},\"bytes\":{bytes},\"seconds\":{:.3}}}",
        started.elapsed().as_secs_f64()
    );
    std::process::ExitCode::SUCCESS
}
