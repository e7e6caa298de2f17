"""English dates as the organisation's British English copy writes them (settings.FORMAT_MODULE_PATH);
what is not set here is Django's own."""
DATE_FORMAT = "j F Y"  # 7 December 2026
DATETIME_FORMAT = "j F Y, H:i"  # 7 December 2026, 03:02
MONTH_DAY_FORMAT = "j F"
SHORT_DATE_FORMAT = "d/m/Y"
SHORT_DATETIME_FORMAT = "d/m/Y H:i"
