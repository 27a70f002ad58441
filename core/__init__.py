"""The core every other package may use: settings, the database and its migrations, the conversation store,
privacy, i18n, the audit trail, LGPD encryption and consent, staff accounts, rate limits and errors.

It imports nothing of the packages above it (docs/decisions/0046-one-conversation-service.md).
"""
