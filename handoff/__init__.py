"""Human handoff: conversation states, the teams' queues, assignment, agents' actions, live state (Redis or
in-process) and inactivity timeouts, behind `handoff.service.HandoffService`."""
