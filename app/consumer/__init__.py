"""Talking to SQS: receive, keep invisible, and settle each message exactly once."""
