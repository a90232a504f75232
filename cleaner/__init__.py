"""cleaner: deletes expired Message Batches on a schedule, exactly and safely."""

__version__ = "0.1.0"
