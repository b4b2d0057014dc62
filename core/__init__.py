"""Plain PyTorch, never Streamlit: see the subpackages (architecture, training, runs, experiments, analysis, report) and cli.py."""
