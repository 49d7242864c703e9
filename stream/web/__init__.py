"""The worker's own web pages (the live page is :mod:`stream.live`)."""
