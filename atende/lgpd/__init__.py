"""LGPD: consent register, data-subject rights (export, erase), retention, extra PII patterns, field encryption.

`atende.lgpd.wiring.Lgpd` holds the pieces; `Services.lgpd` is the instance the app and the CLI use.
"""
