"""Matching: tokens, the BM25 index, the ranking rule, meaning and feedback (pure, no SQL)."""
