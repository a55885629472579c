"""activation: campaigns as data, consent-aware audiences with holdouts, exports, manifests."""
