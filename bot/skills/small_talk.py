"""Small talk: greetings, thanks, help, a bare yes or no, and the answers to "did this help?"."""
from __future__ import annotations

from bot.skills.base import Press, Skill, Turn

skill = Skill("small_talk")


@skill.intent("greet", "goodbye", "thanks", "help", "affirm", "deny")
async def reply(turn: Turn, intent: str) -> None:
    if intent == "greet":
        name = turn.inbound.sender_name
        name_part = turn.t("greet.name_part", name=name) if name else ""
        turn.say("greet", name_part=name_part, buttons=turn.menu())
    elif intent == "help":
        turn.say("help", buttons=turn.menu())
    elif intent == "affirm":
        turn.say("affirm_nothing", buttons=turn.menu())
    elif intent == "deny":
        turn.say("deny_nothing")
    else:
        turn.say(intent)


@skill.command("start")
async def start(turn: Turn) -> None:
    await reply(turn, "greet")


@skill.command("help")
async def help_command(turn: Turn) -> None:
    await reply(turn, "help")


@skill.payload("menu:help")
async def help_button(turn: Turn, press: Press) -> None:
    await reply(turn, "help")


@skill.payload("feedback:yes")
async def helped(turn: Turn, press: Press) -> None:
    turn.say("feedback_thanks")


@skill.payload("feedback:no")
async def did_not_help(turn: Turn, press: Press) -> None:
    turn.say("feedback_sorry", buttons=[turn.button("button.human", "handoff:request"),
                                        turn.button("button.search", "menu:search")])
