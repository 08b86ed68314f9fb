"""Tests in Debian's chromium through Playwright: the wall screen, sign-in, the managers' pages."""

__all__: list[str] = []
