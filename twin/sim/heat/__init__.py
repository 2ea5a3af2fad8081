"""Urban heat: sky view factor, shadows, air-temperature maps, heat stress (UTCI) and scenarios."""
