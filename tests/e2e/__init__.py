"""The whole stack as a new user starts it."""
