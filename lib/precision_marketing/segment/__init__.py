"""Customer segments: KMeans on user_features with stable ids, profiles, names and a report."""
