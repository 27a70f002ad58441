"""The agents' console: the queue, a conversation with its summary and copilot, and the actions on it."""
