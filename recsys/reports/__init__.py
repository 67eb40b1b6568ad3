"""Reports: the per-version HTML evaluation report and the report pages that list the versions."""
