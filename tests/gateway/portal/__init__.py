"""Portal tests in headless Chromium."""
