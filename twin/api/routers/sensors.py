"""``/api/sensors``: the latest reading of every sensor datastream with its QC flags and position
(``WORKSPACE/sensors.sqlite``, filled by ``twin sensors sync|watch --db``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from twin.api.deps import ViewerDep, sensor_store
from twin.api.errors import error_responses

router = APIRouter(prefix="/api/sensors", tags=["sensors"], responses=error_responses(401, 403))

Property = Literal["air_temperature", "relative_humidity", "precipitation", "water_level"]


class SensorReading(BaseModel):
    id: int = Field(description="datastream id in the store")
    source: str = Field(description="the server it came from")
    iot_id: str = Field(description="the datastream's @iot.id on that server")
    name: str | None = None
    thing: str | None = Field(None, description="the station")
    property: str | None = Field(None, description="air_temperature, relative_humidity, precipitation, water_level")
    unit: str | None = Field(None, description="canonical unit of value")
    lon: float | None = Field(None, description="WGS84 longitude (degrees)")
    lat: float | None = Field(None, description="WGS84 latitude (degrees)")
    time: str = Field(description="phenomenon (end) time, ISO 8601 UTC")
    start: str = Field(description="phenomenon start time, ISO 8601 UTC (= time for instants)")
    value: float
    flags: int = Field(description="QC bitmask (0: passed every check)")
    flag_names: list[str] = Field(description="range, spike, stuck, stale, future, spatial_outlier, server_quality")
    age_s: float = Field(description="seconds between the reading and this response")


class SensorList(BaseModel):
    available: bool = Field(description="the workspace has a sensor store (sensors.sqlite)")
    items: list[SensorReading]


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc).isoformat().replace("+00:00", "Z")


@router.get("", response_model=SensorList, summary="Latest reading of each sensor, with QC flags and lon/lat")
def list_sensors(store: Annotated[object | None, Depends(sensor_store)], _: ViewerDep,
                 property: Annotated[Property | None, Query(description="only this property")] = None,
                 include_flagged: Annotated[bool, Query(description="also readings that failed a QC check")] = True,
                 ) -> SensorList:
    if store is None:
        return SensorList(available=False, items=[])
    from twin.sensors import flag_names

    now_us = datetime.now(timezone.utc).timestamp() * 1e6
    items = []
    for d in store.latest(property=property, include_flagged=include_flagged):
        items.append(SensorReading(
            id=d["id"], source=d["source"], iot_id=d["iot_id"], name=d["name"], thing=d["thing"],
            property=d["property"], unit=d["unit"], lon=d["lon"], lat=d["lat"], time=_iso(d["t_end_us"]),
            start=_iso(d["t_start_us"]), value=d["value"], flags=d["flags"], flag_names=flag_names(d["flags"]),
            age_s=round((now_us - d["t_end_us"]) / 1e6, 3)))
    return SensorList(available=True, items=items)
