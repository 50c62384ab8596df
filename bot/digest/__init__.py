"""The digest: what each channel gets, its summaries and messages, and delivery to Slack."""
