"""Serving a class: the run store (SQLite or PostgreSQL), the one training queue and its worker
processes or Ray cluster, what a run may cost and each student's share, recording runs, and the
signed identity that keeps a student's runs theirs."""
