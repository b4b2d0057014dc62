"""Benchmarks that drive the app itself (Streamlit's AppTest), so they live outside core/, which never
imports Streamlit."""
