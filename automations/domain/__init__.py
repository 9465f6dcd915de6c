"""The domain model and its storage: settings, models, database setup, migrations, errors, time."""
