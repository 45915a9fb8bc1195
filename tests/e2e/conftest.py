from tests.bot.channels.graph_double import graph  # noqa: F401 - the one Graph API double fixture
