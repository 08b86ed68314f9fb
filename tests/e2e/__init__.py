"""The whole stack as a new user starts it."""

__all__: list[str] = []
