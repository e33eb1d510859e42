"""One small module per family of dialogue: query, learn, weather, music, phone."""
