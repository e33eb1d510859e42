"""One small module per family of dialogue: query, learn, weather, music (business flows such
as phone binding are YAML files run by wxbot.flows)."""
