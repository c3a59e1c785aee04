"""rtvault: backup, archiving and archive search for Philips Pinnacle radiotherapy databases."""

__version__ = "0.1.0"
