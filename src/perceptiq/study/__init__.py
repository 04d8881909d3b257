"""The browser app that runs a 2AFC study and exports its votes for :mod:`perceptiq.ranking`.

Named now so the layout shows the whole toolkit; built by a later issue.
"""
