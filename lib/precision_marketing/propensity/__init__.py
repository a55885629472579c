"""Purchase propensity: point-in-time training sets, a calibrated LogisticRegression, spend and
churn models, and the evaluation against a recency baseline."""
