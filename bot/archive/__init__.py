"""The archive: every stored paper, held as a shared in-memory index, and search over it."""
