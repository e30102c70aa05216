"""The 12320 health hotline: calls and the agent desk, the self-service knowledge base, 12345 work orders."""
