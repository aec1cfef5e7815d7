"""Produce an NDJSON file to a Kafka topic with an independent client (confluent-kafka).

usage: produce.py BOOTSTRAP TOPIC DLQ_TOPIC PARTITIONS EVENTS.ndjson

Creates TOPIC (PARTITIONS partitions) and DLQ_TOPIC (1 partition) if they are missing, then sends
every line of EVENTS as one message, in order, and waits until the broker has acknowledged all.
Prints the number of messages sent.
"""

import sys

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    bootstrap, topic, dlq, partitions, events = sys.argv[1:6]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = [NewTopic(topic, int(partitions), 1), NewTopic(dlq, 1, 1)]
    existing = admin.list_topics(timeout=30).topics
    missing = [t for t in wanted if t.topic not in existing]
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=30).items():
            future.result()
    # Batches of many records, as real producers send them: a consumer that resumes from a
    # committed offset inside a batch must still see the rest of it (Tansu 0.6.0 answers such a
    # fetch with the next batch; buildcost detects that and re-reads, see docs/operations.md).
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(str(err))

    sent = 0
    with open(events, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            if not line:
                continue
            while True:
                try:
                    producer.produce(topic, value=line, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.1)
            sent += 1
            producer.poll(0)
    left = producer.flush(60)
    if left or failures:
        sys.exit(f"{left} messages not acknowledged, {len(failures)} failed: {failures[:3]}")
    print(sent)


if __name__ == "__main__":
    main()
