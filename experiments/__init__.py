"""Model training and comparison on Sentiment140."""
