"""The app's agents, one per module, each added by its ``register(app, deps)``.

:mod:`stream.agents.stage` stages the input; :mod:`stream.agents.sink` writes the outputs
to the database.
"""
