"""recommend: implicit-feedback ALS, fallbacks, similar items and bought-together rules."""
