"""Tweet sources and the socket relay that feeds them, one JSON line each, to the Spark job."""
