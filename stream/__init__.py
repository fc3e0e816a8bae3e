"""The Spark Structured Streaming job: parse, clean, score over HTTP, label, write parquet."""
