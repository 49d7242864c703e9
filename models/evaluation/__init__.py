"""Evaluate hypnograms: agreement scores, night statistics, figures and reports (no torch).

Import what you need from its module, so that the streaming worker, which needs only the
night statistics, loads neither matplotlib nor rich:

* :mod:`models.evaluation.night_stats`: whole-night statistics, the one implementation
  behind ``sleepstream evaluate`` and the stream's night summaries;
* :mod:`models.evaluation.metrics`: confusion matrices, κ, F1, per-night spreads;
* :mod:`models.evaluation.alignment`: a reference and a prediction on one epoch grid;
* :mod:`models.evaluation.plots`: hypnogram and confusion-matrix figures (matplotlib);
* :mod:`models.evaluation.report`: what ``sleepstream evaluate`` computes and writes.
"""
