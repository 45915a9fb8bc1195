"""Skills: one module per thing the bot can do; each reads the turn and adds replies through it."""
