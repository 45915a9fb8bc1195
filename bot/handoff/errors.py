from __future__ import annotations

from kit.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized


class NotSignedIn(Unauthorized):
    code = "agent_not_signed_in"
    title = "Sign in to the agent console"


class SessionExpired(Unauthorized):
    code = "agent_session_expired"
    title = "The console session has expired"


class WrongCredentials(Unauthorized):
    code = "wrong_credentials"
    title = "Wrong email or password"


class CsrfRejected(Forbidden):
    code = "csrf_rejected"
    title = "Missing or wrong CSRF token"


class NotSupervisor(Forbidden):
    code = "supervisor_only"
    title = "Only a supervisor can do this"


class AgentNotFound(NotFound):
    code = "agent_not_found"
    title = "Agent not found"


class CannedNotFound(NotFound):
    code = "canned_response_not_found"
    title = "Canned response not found"


class ThreadNotFound(NotFound):
    code = "conversation_not_found"
    title = "Conversation not found"


class AlreadyTaken(Conflict):
    code = "conversation_taken"
    title = "Another agent already took this conversation"


class NotYours(Conflict):
    code = "not_your_conversation"
    title = "This conversation belongs to another agent"


class AlreadyResolved(Conflict):
    code = "conversation_resolved"
    title = "The conversation is already resolved"


class NotInHumanMode(Conflict):
    code = "bot_is_answering"
    title = "The bot is answering this conversation; take it over first"


class AgentExists(Conflict):
    code = "agent_exists"
    title = "An agent with this email exists"


class NoDraft(Conflict):
    code = "no_draft"
    title = "There is no bot draft waiting"


class BadAgentInput(InvalidInput):
    code = "invalid_agent_input"
