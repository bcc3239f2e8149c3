"""Kafka and file I/O: sources, sinks, topics, and what a running dataflow does about faults, stops and metrics."""
