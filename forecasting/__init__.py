"""forecasting package."""
