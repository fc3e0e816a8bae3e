"""The model: tokenise, run the forward pass on the engine chosen at start-up, turn logits into
probabilities and labels (:class:`model_api.model.predictor.SentimentPredictor`); the engines,
their compile cache and packing; where the bundled weights are (``models/`` at the top)."""
