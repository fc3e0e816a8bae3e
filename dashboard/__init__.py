"""The live dashboard of the pipeline's output (Streamlit) and its offline report (matplotlib)."""
