"""The WhatsApp Cloud API channel: signed webhook → durable inbox → assistant → outbox → Graph API."""
