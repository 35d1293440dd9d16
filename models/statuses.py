"""A prediction's statuses that say where its risk comes from, readable without pandas or scikit-learn."""

COLD_START_STATUS = "cold_start"  # a cold-start version's predictions: alerts without failure history
# The status of a prediction whose risk is learned from the anomaly score alone (no failure model to use).
FALLBACK_STATUS = "fallback"
# Statuses whose risk no failure model made: their predictions carry no remaining life. A cold start's RUL
# model learned from no failure (its figure is its cap); a readings-alone row cannot say whether its RUL model
# did, and a time to failure beside a risk "from its readings alone" would claim a failure model's view.
NO_FAILURE_MODEL = (COLD_START_STATUS, FALLBACK_STATUS)
