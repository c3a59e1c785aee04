"""Archives: Pinnacle tar files written, ingested, salvaged, indexed and restored by random access."""
