"""The local payment gateway: the embedded default when no Stripe key is set, never in production."""
