"""Conversations: one per (channel, shopper id on that channel), with every message and its NLU result."""
