"""gold/user_features: point-in-time customer features (RFM, behaviour, affinity, interests)."""
