"""What every stage shares: cleaning rules, label band, tweet schema, the Sentiment140 reader, config.

Nothing here imports Spark, torch or Flask, so every stage can import it cheaply.
"""
