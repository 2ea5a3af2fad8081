"""``twin sensors``: sync, watch and list sensor readings (a shell over twin.sensors)."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("sensors", help="live sensor readings (OGC SensorThings API, MQTT)",
                              description="Read sensor observations from an urban data platform into a database.")
    sub = p.add_subparsers(dest="sensors_command", metavar="ACTION")
    sub.required = True

    s = sub.add_parser("sync", help="read new observations over HTTP (resumes from the high-water marks)")
    s.add_argument("--url", required=True, help="SensorThings service root, e.g. http://host/FROST-Server/v1.1")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--bbox", help="LON_MIN,LAT_MIN,LON_MAX,LAT_MAX (WGS84)")
    where.add_argument("--scene", help="scene folder: its bounding box, transformed to WGS84")
    s.add_argument("--db", required=True, help="SQLite file (default store) or postgresql:// URL")
    s.add_argument("--since", help="ISO 8601 start for datastreams read for the first time")
    s.add_argument("--property", action="append", dest="properties",
                   help="air_temperature, relative_humidity, precipitation, water_level (repeatable; default all)")
    s.add_argument("--lookback", type=float, default=3600.0, help="seconds re-read before the mark (late data)")
    s.add_argument("--page-size", type=int, default=100)
    s.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    s.add_argument("--json", action="store_true", help="print the report as JSON")

    w = sub.add_parser("watch", help="follow observations over MQTT, backfilling over HTTP after reconnects")
    w.add_argument("--url", required=True)
    w.add_argument("--mqtt", required=True, help="broker HOST:PORT")
    w.add_argument("--db", required=True)
    where = w.add_mutually_exclusive_group()
    where.add_argument("--bbox")
    where.add_argument("--scene")
    w.add_argument("--property", action="append", dest="properties")
    w.add_argument("--since")
    w.add_argument("--topic-prefix", default="v1.1")
    w.add_argument("--duration", type=float, help="stop after this many seconds (default: until interrupted)")
    w.add_argument("--json", action="store_true")

    ls = sub.add_parser("list", help="list the datastreams in a database with counts and flags")
    ls.add_argument("--db", required=True)
    ls.add_argument("--json", action="store_true")
    return p


def _bbox(args) -> tuple[float, float, float, float] | None:
    from twin.errors import TwinValueError

    if getattr(args, "bbox", None):
        try:
            vals = tuple(float(v) for v in args.bbox.split(","))
        except ValueError as exc:
            raise TwinValueError(f"--bbox {args.bbox!r} is not four numbers; fix: LON_MIN,LAT_MIN,LON_MAX,LAT_MAX") \
                from exc
        if len(vals) != 4 or vals[0] > vals[2] or vals[1] > vals[3]:
            raise TwinValueError(f"--bbox {args.bbox!r} is not LON_MIN,LAT_MIN,LON_MAX,LAT_MAX with min <= max")
        return vals
    if getattr(args, "scene", None):
        from twin.sensors.geo import scene_bbox_wgs84

        return scene_bbox_wgs84(args.scene)
    return None


def run(args) -> int:
    from twin.sensors.store import open_store

    if args.sensors_command == "list":
        with open_store(args.db) as store:
            rows = store.list_datastreams()
        if args.json:
            json.dump(rows, sys.stdout, indent=1, default=str)
            print()
        else:
            from twin.sensors._model import us_to_iso

            print(f"{'id':>4} {'property':<18} {'unit':<5} {'readings':>8} {'flagged':>7} {'rejected':>8}  "
                  f"{'last (UTC)':<20}  name")
            for d in rows:
                last = us_to_iso(d["last_us"]) if d["last_us"] is not None else "-"
                print(f"{d['id']:>4} {d['property'] or '-':<18} {d['unit'] or '-':<5} {d['n_readings']:>8} "
                      f"{d['n_flagged']:>7} {sum(d['rejected'].values()):>8}  {last:<20}  {d['name']}")
        return 0

    from twin.sensors.client import SensorThingsClient
    from twin.sensors.ingest import discover, sync

    bbox = _bbox(args)
    with SensorThingsClient(args.url, timeout_s=getattr(args, "timeout", 30.0)) as client, open_store(args.db) as store:
        if args.sensors_command == "sync":
            report = sync(client, store, properties=args.properties, bbox_wgs84=bbox, since=args.since,
                          lookback_s=args.lookback, page_size=args.page_size)
            out = report.to_dict()
            if not args.json:
                out.pop("per_datastream")
            print(json.dumps(out, indent=1) if args.json else
                  f"synced {out['datastreams']} datastreams: {out['inserted']} new, {out['duplicates']} duplicates, "
                  f"{sum(out['rejected'].values())} rejected, {out['flagged_future']} future, {out['pages']} pages, "
                  f"{len(out['skipped'])} skipped, {len(out['incomplete'])} incomplete")
            return 0 if report.ok else 1
        from twin.sensors.mqtt import MqttWatcher, parse_host_port

        host, port = parse_host_port(args.mqtt)
        infos = discover(client, properties=args.properties, bbox_wgs84=bbox)
        watcher = MqttWatcher(client, store, infos, host=host, port=port, topic_prefix=args.topic_prefix,
                              since=args.since)
        try:
            rep = watcher.run(duration_s=args.duration)
        except KeyboardInterrupt:
            watcher.stop()
            rep = watcher.report
        print(json.dumps(rep.to_dict(), indent=1) if args.json else
              f"watched {len(infos)} datastreams: {rep.mqtt.inserted} new over MQTT, "
              f"{rep.backfill.stats.inserted} by backfill, {rep.connects} connects, {rep.disconnects} disconnects")
        return 0
