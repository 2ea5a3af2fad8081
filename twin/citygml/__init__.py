"""CityGML 1.0 / 2.0 / 3.0 import into a :class:`twin.scene.Scene`."""

from twin.citygml.reader import open_citygml, read_citygml

__all__ = ["open_citygml", "read_citygml"]
