"""Bringing a newsroom's history in: from Stripe's list APIs (`stripe_import`)."""
