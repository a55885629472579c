"""Campaign measurement: treatment vs control uplift, significance and ROI per campaign window."""
