"""The forecasting package's exception root."""


class ForecastError(Exception):
    """Bad input (history, plan, horizon) or a model that cannot be fitted; the message says what and where."""
