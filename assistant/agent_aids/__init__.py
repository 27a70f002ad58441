"""What the assistant does for the people who serve citizens: reply suggestions (copilot), handoff summaries,
sentiment classifiers and translators.

The handoff stores and shows their results through the Protocols defined here (`SentimentClassifier`,
`Translator`); nothing in this package knows about queues, agents or channels.
"""
