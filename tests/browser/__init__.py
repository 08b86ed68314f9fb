"""Tests in Debian's chromium through Playwright: the wall screen, sign-in, the managers' pages."""
