"""Human handoff: conversation states, the agents' queues, live state (Redis or in-process), summaries."""
