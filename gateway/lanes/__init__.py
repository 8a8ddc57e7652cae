"""Lanes: the barrier, the loops and the camera of one entry or exit, run by the engine."""
