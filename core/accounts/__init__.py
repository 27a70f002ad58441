"""Staff identity and access: users, teams, roles, sessions, tokens, two-factor, single sign-on.

Who may do what is one table, `core.accounts.permissions`; every route of the app is declared there.
"""
