"""Staff identity, roles, sign-in, two-factor codes, and the audit log (layer 1)."""
