"""The app's timers and background checks, one per module, each added by ``register(app, deps)``.

:mod:`stream.timers.tick` closes silent live subjects and finishes nights,
:mod:`stream.timers.health` reports the worker's health, and
:mod:`stream.timers.readability` checks that the worker can read its input.
"""
