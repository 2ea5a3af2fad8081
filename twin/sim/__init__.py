"""Simulation models on the twin grid (siblings of the readers and writers; import twin.scene, twin.grid,
twin.crs and twin.errors only).

- :mod:`twin.sim.heavyrain`: heavy rain (Starkregen), a local-inertial 2D inundation model.
- :mod:`twin.sim.heat`: urban heat.

Subpackages load lazily: importing :mod:`twin.sim` compiles and reads nothing.
"""
