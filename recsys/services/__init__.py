"""The API's domain services: API keys, pseudonymisation, attribution of events to served lists, a
shopper's data (history, forgetting) and the status view. Ranking stays in recsys.serving."""
