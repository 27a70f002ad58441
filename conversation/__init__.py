"""The conversation layer: the one path a citizen's message takes in and a reply takes out, whatever the channel.

channel adapter → inbox → `ConversationService` (the agent's, or the assistant's with the handoff decision) →
one transaction for the reply, the state change, a handoff and the channel's outgoing messages.
"""
