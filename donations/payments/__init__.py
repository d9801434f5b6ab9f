"""Payments: the gateway interface (Stripe or the local stand-in), the webhook and its handlers.

Only this package imports `stripe`.
"""
