"""Bluetooth LE heart-rate devices (Heart Rate Service 0x180D) as live sessions on Kafka.

See :mod:`ingestors.ble.ingestor` for the session, :mod:`ingestors.ble.link` for the
device connection and :mod:`ingestors.ble.measurement` for the 0x2A37 payload.
"""

from ingestors.ble.ingestor import RR_HOLD_S, BleReport, BleStatus, ingest_ble, run_ble
from ingestors.ble.link import BleakLink, BleError, HeartRateLink
from ingestors.ble.measurement import (
    HEART_RATE_MEASUREMENT_UUID,
    HEART_RATE_SERVICE_UUID,
    RR_TICKS_PER_S,
    HeartRateMeasurement,
    beat_times,
    parse_measurement,
)

__all__ = [
    "HEART_RATE_MEASUREMENT_UUID", "HEART_RATE_SERVICE_UUID", "RR_HOLD_S", "RR_TICKS_PER_S",
    "BleError",
    "BleReport", "BleStatus", "BleakLink", "HeartRateLink", "HeartRateMeasurement",
    "beat_times", "ingest_ble", "parse_measurement", "run_ble",
]
