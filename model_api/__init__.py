"""The BERT REST service: a predictor and the Flask app that serves it."""
