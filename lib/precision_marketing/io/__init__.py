"""Storage: table paths, Delta helpers and raw-file access through Hadoop's FileSystem."""
