"""LGPD in the core: field encryption and blind indexes, pseudonymous references, the consent register.

Data-subject rights, retention and the sources of every package's personal data are gathered in the
shell (`atende.lgpd`).
"""
