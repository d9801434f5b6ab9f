"""Protection against card testing: rate limits, decline cool-downs, CAPTCHA (layer 3)."""
