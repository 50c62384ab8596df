"""The end-to-end stack (real Bolt app over HTTP, fake Slack and Hugging Face on loopback)."""

from tests.e2e.conftest import seed_items, stack  # noqa: F401
