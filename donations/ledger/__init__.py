"""The ledger: the one writer of donors, gifts, reversals and memberships."""
